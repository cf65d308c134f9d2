"""The demo source: synthetic scenes, their ray-cast frames and writers of the three real raw layouts.
Part of scenes: may import scenes and schemas only."""
