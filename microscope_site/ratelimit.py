"""A fixed-window request counter in the cache, shared by every rate limit of the site."""

from django.core.cache import cache


def hits_in_window(key: str, window_s: int) -> int:
    """Count one more hit on `key` and return the count in the current `window_s` window."""
    cache.add(key, 0, timeout=window_s)
    try:
        return cache.incr(key)
    except ValueError:  # the window expired between add and incr
        cache.set(key, 1, timeout=window_s)
        return 1
