"""Users, homes, rooms, device binding and sharing; and the tokens every caller presents."""
