"""Protected fields: encryption at rest, blind indexes and key rotation (issue 12). Pure plus boto3:
no SQLAlchemy, api or app imports. See README.md for the layer rules and the stored format."""

from generator.crypto.build import Ciphers, build_ciphers
from generator.crypto.cipher import FieldCipher, associated_data
from generator.crypto.envelope import from_text, to_text
from generator.crypto.errors import DecryptionFailed, KeyProblem, KmsError
from generator.crypto.keyring import ENGINE_NAMES

__all__ = [
    "ENGINE_NAMES",
    "Ciphers",
    "DecryptionFailed",
    "FieldCipher",
    "KeyProblem",
    "KmsError",
    "associated_data",
    "build_ciphers",
    "from_text",
    "to_text",
]
