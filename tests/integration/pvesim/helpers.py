"""Shared helpers of the simulator tests."""
from __future__ import annotations

import pytest
from proxmoxer import ResourceException


def raises(func, *args, **kwargs) -> ResourceException:
    """Call ``func`` and return the ResourceException it must raise."""
    with pytest.raises(ResourceException) as info:
        func(*args, **kwargs)
    return info.value
