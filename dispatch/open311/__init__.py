"""Citizen channels: the Open311 GeoReport v2 endpoint and the public progress lookup."""
