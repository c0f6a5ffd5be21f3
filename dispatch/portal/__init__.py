"""The citizens' own channel (市民端, ``channel: app``): submitting, following and rating
requests from a phone, so that fewer of them need the hotline's phone lines (话务分流)."""
