"""Every setting is documented beside its field and listed in README (as Datasette checks its docs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.errors import ConfigError
from infra.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_described_and_in_readme(name):
    assert Settings.model_fields[name].description
    assert f"`CITYHUB_{name.upper()}`" in README


def test_settings_are_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CITYHUB_HOME", str(tmp_path))
    monkeypatch.setenv("CITYHUB_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")
    settings = Settings()
    assert settings.lake == tmp_path.resolve() / "lake"
    assert settings.bootstrap == "kafka-1:9092,kafka-2:9092" and not settings.uses_embedded_broker


def test_hmac_key_comes_from_a_secret_never_from_the_lake(monkeypatch, tmp_path):
    monkeypatch.setenv("CITYHUB_HOME", str(tmp_path))
    key = Settings().pseudonym_key()
    assert len(key) >= 32 and (tmp_path / "secrets" / "hmac.key").stat().st_mode & 0o077 == 0
    assert Settings().pseudonym_key() == key  # stable across processes
    monkeypatch.setenv("CITYHUB_HMAC_KEY_FILE", str(tmp_path / "missing.key"))
    with pytest.raises(ConfigError):
        Settings().pseudonym_key()
