"""The crypto package's own errors. None of them ever carries plaintext or key material in its message."""

from __future__ import annotations

from generator.errors import GeneratorError


class DecryptionFailed(GeneratorError):
    """A stored value could not be decrypted: wrong or unknown key, tampered bytes, or a ciphertext copied
    from another row or column (its associated data differs). Never returns garbage instead."""


class KeyProblem(GeneratorError, ValueError):
    """A configured key cannot be used: the variable is unset, or does not hold a 256-bit key.

    The message names the variable, never its value."""


class KmsError(GeneratorError):
    """KMS refused or failed a call other than a decryption (access denied, unknown key, unreachable)."""
