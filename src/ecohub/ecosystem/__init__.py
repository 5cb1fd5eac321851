"""The brand's side of the ecosystem: partners, stakes, products and their lifecycle, markets, channel."""
