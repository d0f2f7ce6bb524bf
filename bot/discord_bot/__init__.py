"""The Discord shell over the answer engine."""
