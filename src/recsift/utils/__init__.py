"""Small helpers shared by every layer: seeding, threads, atomic writes."""
