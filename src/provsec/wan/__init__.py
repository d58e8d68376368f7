"""WAN edge configuration backup (issue 7 §2): `provsec wan backup|diff|history|ack` (src/provsec/wan/README.md)."""
