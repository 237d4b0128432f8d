"""Who is calling: a `Principal` per request, put in the ASGI scope by the dispatcher (see README.md)."""

from generator.identity.principal import ANONYMOUS, DEVELOPER, PRINCIPAL_KEY, SERVICE, Principal, principal_of

__all__ = ["ANONYMOUS", "DEVELOPER", "PRINCIPAL_KEY", "SERVICE", "Principal", "principal_of"]
