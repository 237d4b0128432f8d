"""Default plugins: the platform's own behaviour, registered through the hook layer like a third party's."""
