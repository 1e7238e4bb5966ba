"""What `make run` prints for a second terminal: the simulate_call command names the
port web listens on and the demo double's URL, since that terminal has neither."""
import importlib.util
import shlex

from conftest import BASE_DIR

spec = importlib.util.spec_from_file_location("make_run", BASE_DIR / "scripts" / "run.py")
make_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_run)


def _options(command: str) -> dict:
    words = shlex.split(command)
    assert words[:3] == [".venv/bin/python", "manage.py", "simulate_call"]
    options = {}
    for flag, value in zip(words[3::2], words[4::2], strict=True):
        options.setdefault(flag, []).append(value)
    return options


def test_default_port_and_the_double_make_run_starts():
    env = {"PORT": "8000", "DEMO_OPENAI_BASE_URL": "http://127.0.0.1:8111/v1"}
    assert _options(make_run.try_call_command(env)) == {
        "--client": ["demo"], "--number": ["+15550100100"], "--server": ["http://127.0.0.1:8000"],
        "--register-with": ["http://127.0.0.1:8111"],
        "--say": ["What are your opening hours?", "Thanks, goodbye"],
    }


def test_another_port_and_a_double_running_elsewhere():
    env = {"PORT": "9123", "BIND_ADDRESS": "0.0.0.0", "DEMO_OPENAI_BASE_URL": "http://10.1.2.3:9000/v1/"}
    options = _options(make_run.try_call_command(env))
    assert options["--server"] == ["http://127.0.0.1:9123"]
    assert options["--register-with"] == ["http://10.1.2.3:9000"]


def test_web_bound_to_one_address_is_called_there():
    env = {"PORT": "8000", "BIND_ADDRESS": "192.168.5.7", "DEMO_OPENAI_BASE_URL": "http://127.0.0.1:8111/v1"}
    assert _options(make_run.try_call_command(env))["--server"] == ["http://192.168.5.7:8000"]


def test_simulate_call_accepts_every_option_printed(tmp_path):
    from django.core.management import load_command_class

    command = load_command_class("apps.voice", "simulate_call")
    parser = command.create_parser("manage.py", "simulate_call")
    env = {"PORT": "9123", "DEMO_OPENAI_BASE_URL": "http://10.1.2.3:9000/v1"}
    parsed = parser.parse_args(shlex.split(make_run.try_call_command(env))[3:])
    assert (parsed.server, parsed.register_with) == ("http://127.0.0.1:9123", "http://10.1.2.3:9000")
    assert parsed.say == ["What are your opening hours?", "Thanks, goodbye"]
