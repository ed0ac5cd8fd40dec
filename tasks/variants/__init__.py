"""Layer 4: protocols beyond the 26-option question: open/closed world, describe then text-only, multi-label."""
