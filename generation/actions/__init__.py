"""Every write to generation's models goes through these functions."""
