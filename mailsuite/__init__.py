"""mailsuite: a standalone mail server suite on one asyncio loop."""
