"""SecretBox: secrets round-trip, and ciphertext from another key or altered is refused."""

import pytest

from tessera.platform.secrets import SecretBox, SecretUnreadable


def test_a_sealed_secret_opens_with_the_same_passphrase_only() -> None:
    box = SecretBox("a passphrase of some length")
    sealed = box.seal({"key": "AKIA123", "secret_key": "s3cr3t"})
    assert b"s3cr3t" not in sealed
    assert SecretBox("a passphrase of some length").open(sealed) == {
        "key": "AKIA123",
        "secret_key": "s3cr3t",
    }
    with pytest.raises(SecretUnreadable):
        SecretBox("another passphrase entirely").open(sealed)
    altered = bytearray(sealed)
    altered[40] ^= 1
    with pytest.raises(SecretUnreadable):
        box.open(bytes(altered))


def test_short_passphrases_are_refused() -> None:
    with pytest.raises(ValueError, match="16 characters"):
        SecretBox("short")
