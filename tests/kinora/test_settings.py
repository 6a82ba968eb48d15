import pytest
from pydantic import ValidationError

from kinora.settings import Settings


def test_env_prefix_and_nested_delimiter(monkeypatch, tmp_path):
    monkeypatch.setenv("KINORA_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("KINORA_GENERATION__FPS", "30")
    s = Settings()
    assert s.home == (tmp_path / "h").resolve()
    assert s.generation.fps == 30
    assert s.database_url == f"sqlite:///{(tmp_path / 'h').resolve()}/kinora.db"
    assert s.lake_dir == (tmp_path / "h" / "lake").resolve()


def test_unknown_key_is_rejected(monkeypatch):
    with pytest.raises(ValidationError, match="extra"):
        Settings(generation={"fsp": 30})


def test_settings_file(monkeypatch, tmp_path):
    f = tmp_path / "kinora.yaml"
    f.write_text("generation:\n  num_inference_steps: 7\nserve:\n  port: 9000\n")
    monkeypatch.setenv("KINORA_SETTINGS_FILE", str(f))
    monkeypatch.setenv("KINORA_SERVE__PORT", "9100")  # the environment wins over the file
    s = Settings()
    assert s.generation.num_inference_steps == 7
    assert s.serve.port == 9100


def test_local_preset_needs_a_checkpoint_dir():
    with pytest.raises(ValidationError, match="checkpoint_dir"):
        Settings(generation={"preset": "local"})


def test_production_refuses_the_dev_ca(tmp_path):
    with pytest.raises(ValidationError, match="chain_path"):
        Settings(home=tmp_path, environment="production")


def test_redacted_hides_passwords(tmp_path):
    s = Settings(home=tmp_path, store={"database_url": "postgresql+psycopg://kin:hunter2@db/kinora"})
    red = s.redacted()
    assert "hunter2" not in str(red) and "kin:***@db" in red["store"]["database_url"]


def test_ray_address_comes_from_rays_own_variable_unless_settings_name_one(monkeypatch):
    from kinora.settings import Settings

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert Settings().serve.ray_address is None  # no cluster named: a local Ray
    monkeypatch.setenv("RAY_ADDRESS", "head:6379")
    assert Settings().serve.ray_address == "head:6379"
    monkeypatch.setenv("KINORA_SERVE__RAY_ADDRESS", "ray://other:10001")
    assert Settings().serve.ray_address == "ray://other:10001"
