"""The provincial WAN: edge routers' configuration backup, audit and links."""
