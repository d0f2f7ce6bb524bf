"""The answer engine. It imports nothing from discord, and nothing heavy until it is used."""
