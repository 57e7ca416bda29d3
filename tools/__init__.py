"""Development tools of the proxmox_ai.hardening collection (not shipped as plugins)."""
