"""Button clicks and modal submissions as the fake Discord sends them (interaction types 3 and 5)."""

from __future__ import annotations

from typing import Any

from fake_discord import FakeDiscord, FakeUser

TEXT_INPUT = 4


def click_payload(fake: FakeDiscord, user: FakeUser, message: dict[str, Any], custom_id: str) -> dict[str, Any]:
    """A click on the button ``custom_id`` under ``message`` (a message the fake stored)."""
    payload = fake._interaction_base(user)
    payload["type"] = 3
    payload["message"] = message
    payload["data"] = {"custom_id": custom_id, "component_type": 2}
    return payload


def modal_submit_payload(
    fake: FakeDiscord, user: FakeUser, modal: dict[str, Any], values: list[str], message: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The submission of ``modal`` (the data of the bot's type-9 callback), its text inputs filled in order."""
    filled = iter(values)

    def submitted(component: dict[str, Any]) -> dict[str, Any]:
        if component.get("type") == TEXT_INPUT:
            return {"type": TEXT_INPUT, "custom_id": component["custom_id"], "value": next(filled, "")}
        result = {key: value for key, value in component.items() if key in ("type", "id")}
        if "components" in component:
            result["components"] = [submitted(child) for child in component["components"]]
        if "component" in component:
            result["component"] = submitted(component["component"])
        return result

    payload = fake._interaction_base(user)
    payload["type"] = 5
    payload["data"] = {"custom_id": modal["custom_id"], "components": [submitted(c) for c in modal["components"]]}
    if message is not None:
        payload["message"] = message
    return payload


def button_ids(message: dict[str, Any]) -> list[str]:
    return [button["custom_id"] for row in message.get("components") or [] for button in row.get("components", [])]
