"""PASTRA_SYSTEM_INSTRUCTION_FILE: the deployment's base instruction from a text file (the
tutorial's system-instructions.txt), winning over PASTRA_SYSTEM_INSTRUCTION; a missing,
unreadable or empty file stops the start with the variable and the path named."""

from assistant.personas import STANDING_HEADER, with_standing_instructions
from tests.test_settings import run_django, settings_value


def test_the_file_wins_over_the_variable(tmp_path):
    path = tmp_path / "system-instructions.txt"
    path.write_text("  Always use get_weather for weather questions.\nBe kind.\n", encoding="utf-8")
    value = settings_value(
        "PASTRA_SYSTEM_INSTRUCTION",
        PASTRA_SYSTEM_INSTRUCTION="from the variable",
        PASTRA_SYSTEM_INSTRUCTION_FILE=str(path),
    )
    assert value == "Always use get_weather for weather questions.\nBe kind."
    assert settings_value("PASTRA_SYSTEM_INSTRUCTION", PASTRA_SYSTEM_INSTRUCTION="only") == "only"


def test_a_missing_or_empty_file_stops_the_start_and_says_which(tmp_path):
    missing = tmp_path / "nope.txt"
    result = run_django(["check"], PASTRA_SYSTEM_INSTRUCTION_FILE=str(missing))
    assert result.returncode != 0
    assert f"cannot read PASTRA_SYSTEM_INSTRUCTION_FILE={missing}" in result.stderr
    assert "No such file" in result.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    result = run_django(["check"], PASTRA_SYSTEM_INSTRUCTION_FILE=str(empty))
    assert result.returncode != 0
    assert f"PASTRA_SYSTEM_INSTRUCTION_FILE={empty} is empty" in result.stderr


def test_standing_instructions_come_last_and_keep_the_role():
    built = {
        "setup": {"model": "m", "systemInstruction": {"role": "user", "parts": [{"text": "B"}]}}
    }
    merged = with_standing_instructions(built, "  Call me Sam. ")
    assert merged["setup"]["systemInstruction"] == {
        "role": "user",
        "parts": [{"text": f"B\n\n{STANDING_HEADER}\nCall me Sam."}],
    }
    assert merged["setup"]["model"] == "m"
    assert built["setup"]["systemInstruction"]["parts"] == [{"text": "B"}]  # not mutated
    assert with_standing_instructions(built, " ") is built
    alone = with_standing_instructions({"setup": {}}, "Hi")
    assert alone["setup"]["systemInstruction"] == {"parts": [{"text": f"{STANDING_HEADER}\nHi"}]}
