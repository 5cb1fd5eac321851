"""The demo ecosystem: generated partners, products and markets, a demo home and fleet (composition layer)."""
