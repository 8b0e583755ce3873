"""Every example in README.md and docs/*.md runs, and prints what the page says it prints.

A ```console block is a terminal session: a line that starts with `$ ` is a command (a line
ending in a backslash goes on on the next one), and the lines up to the next command are what
it printed. Every console block runs, except one right after a line `<!-- not run: why -->`:
the README's opening example alone, a real provider's answer. A block's commands run one after
the other in one folder (a `-c chat.json` of one is there for the next), through `run_script`,
under each of g4f's HTTP backends, against the test server, whose real port replaces 8765 in
the commands and in what they print. The commands it knows:

- `python messages_stream.py ARGS`, ARGS split as a shell splits them (shlex), its stdout on a
  terminal (a pseudo-terminal), as the page shows it;
- `echo TEXT | python messages_stream.py ARGS`: TEXT and a line break on standard input;
- `python messages_stream.py ARGS > FILE`: stdout into FILE, in the block's folder;
- `cat FILE`: what FILE holds;
- `echo $?`: the exit status of the command before;
- `python messages_stream.py -i ARGS`: a chat, run on a pseudo-terminal (tests/test_chat.py),
  where a line `> TEXT` is TEXT typed at the prompt, and a last, bare `>` is Ctrl-D; what it
  printed is what the terminal showed, stdout and stderr as one.

Anything else fails the test: an example that needs the network is a ```sh block instead.

What a terminal shows is stdout and stderr mixed, and the pages show it so. The test splits
what a command printed: after the line that starts with `Final accumulated text:` (the last of
stdout), everything is stderr (the -v report); before it, stderr is each `error: …`, `hint: …`
or `messages_stream.py: error: …` up to the end of its line, wherever on a line it starts (after
text without a line break, as on a terminal). The rest is stdout, and it must be what the
command printed exactly, but for spaces at the end of a line (editors strip them). In stderr
`…` stands for any text (the words of g4f's two HTTP backends differ), and a number with a
decimal point for any number (timings); in stdout, `…` stands for any text too.

Every ```python block is one that tests/test_lifted.py runs as written."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, Result, script_env
from tests.conftest import SCRIPT as SCRIPT_PATH
from tests.openai_server import OpenAIServer
from tests.test_chat import CTRL_D, Terminal
from tests.test_e2e import on_a_terminal
from tests.test_lifted import readme_programs, web_doc_program
from tests.test_memory import page_programs
from tests.test_scale import recipes

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"<!-- not run: .+ -->")
FINAL = re.compile(r"^Final accumulated text:.*\n", re.MULTILINE)
STDERR = re.compile(r"(?:messages_stream\.py: )?(?:error|hint): [^\n]*\n")
SCRIPT = ["python", "messages_stream.py"]


@dataclass
class Block:
    page: str  # the page's path in the repository
    line: int  # the line of its opening fence
    language: str
    text: str
    run: bool  # False: right after a `<!-- not run: ... -->` line

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(language: str) -> list[Block]:
    """The fenced blocks of this language on every page, in order."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.DOTALL | re.MULTILINE):
            if match[1] == language:
                before = text[: match.start()].rstrip("\n").rpartition("\n")[2]
                line = text.count("\n", 0, match.start()) + 1
                run = not NOT_RUN.fullmatch(before)
                found.append(Block(str(page.relative_to(ROOT)), line, language, match[2], run))
    return found


@dataclass
class Command:
    words: list[str]
    shown: str  # what the page shows it printed


def session(text: str) -> list[Command]:
    """The commands of a console block, each with what it printed."""
    commands: list[Command] = []
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\"):
                command = command[:-1] + next(lines)
            commands.append(Command(shlex.split(command), ""))
        else:
            assert commands, f"output before any command: {line!r}"
            commands[-1].shown += line + "\n"
    return commands


def split(shown: str) -> tuple[str, str]:
    """What a terminal showed, as (stdout, stderr): see the module's docstring."""
    finals = list(FINAL.finditer(shown))
    end = finals[-1].end() if finals else len(shown)
    before, after = shown[:end], shown[end:]
    return STDERR.sub("", before), "".join(STDERR.findall(before)) + after


def pattern(shown: str, numbers: bool) -> re.Pattern[str]:
    """`shown` as a pattern: `…` is any text; with `numbers`, 1.034 is any number."""
    parts = []
    for piece in re.split(r"(…|\d+\.\d+)" if numbers else "(…)", shown):
        if piece == "…":
            parts.append(".*?")
        elif numbers and re.fullmatch(r"\d+\.\d+", piece):
            parts.append(r"\d+(?:\.\d+)?")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts), re.DOTALL)


def trimmed(text: str) -> str:
    """Without spaces at the ends of lines."""
    return "\n".join(line.rstrip() for line in text.split("\n"))


def matches(shown: str, printed: str, numbers: bool = False) -> bool:
    return pattern(shown, numbers).fullmatch(printed) is not None


CONSOLE = blocks("console")


def chat(args: list[str], shown: str, tmp_path: Path, backend: str) -> Result:
    """Run a `-i` chat on a terminal, typing what the page shows typed; all it shows is `out`."""
    term = Terminal(args, script_env(tmp_path, backend), tmp_path)
    try:
        screen = term.wait_for("> ")
        for line in (line for line in shown.splitlines() if line.startswith(">")):
            if line.rstrip() == ">":
                term.type(CTRL_D)
            else:
                term.type(line[2:].encode() + b"\r")
                screen += term.wait_for("\n> ")
        status, rest = term.end()
        return Result(status, screen + rest, "")
    finally:
        term.proc.kill()
        term.proc.wait()
        os.close(term.fd)


@pytest.mark.parametrize("block", [b for b in CONSOLE if b.run], ids=lambda b: b.where)
def test_a_console_example_prints_what_the_page_shows(
    block: Block, server: OpenAIServer, backend: str, tmp_path: Path
) -> None:
    text = block.text.replace("127.0.0.1:8765", f"127.0.0.1:{server.port}")
    commands = session(text)
    assert commands, f"{block.where}: a console block without a command"
    status = None
    for command in commands:
        words, said = command.words, f"{block.where}: $ {shlex.join(command.words)}"
        if words == ["echo", "$?"]:
            assert status is not None, f"{said}: no command before it"
            assert command.shown == f"{status}\n", f"{said}: the exit status was {status}"
            continue
        if words[:1] == ["cat"] and len(words) == 2:
            held = (tmp_path / words[1]).read_text(encoding="utf-8")
            assert trimmed(held) == trimmed(command.shown), f"{said}: {held!r}"
            continue
        stdin = b""
        if "|" in words:
            left, words = words[: words.index("|")], words[words.index("|") + 1 :]
            assert left[:1] == ["echo"], f"{said}: only `echo TEXT |` can pipe into the script here"
            stdin = (" ".join(left[1:]) + "\n").encode()
        assert words[:2] == SCRIPT, f"{said}: not a command this test runs: make the block ```sh"
        if "-i" in words:  # a terminal shows the chat whole: no stdout and stderr to tell apart
            result = chat(words[2:], command.shown, tmp_path, backend)
            status = result.status
            assert trimmed(result.out) == trimmed(command.shown), f"{said}: the terminal\n{result.out}"
            continue
        env, into = script_env(tmp_path, backend), None
        if ">" in words:
            words, into = words[: words.index(">")], words[words.index(">") + 1 :]
            assert len(into) == 1, f"{said}: `> FILE` ends the command"
            with open(tmp_path / into[0], "wb") as file:
                run = subprocess.run(
                    [sys.executable, str(SCRIPT_PATH), *words[2:]],
                    input=stdin,
                    stdout=file,
                    stderr=subprocess.PIPE,
                    env=env,
                    cwd=tmp_path,
                    timeout=60,
                )
            result = Result(run.returncode, "", run.stderr.decode("utf-8", "replace"))
        else:
            result = on_a_terminal(words[2:], env, tmp_path, stdin)
        status = result.status
        out, err = split(command.shown)
        if "…" in out:
            assert matches(trimmed(out), trimmed(result.out)), f"{said}: stdout\n{result.out}"
        else:
            assert trimmed(result.out) == trimmed(out), f"{said}: stdout"
        assert matches(err, result.err, numbers=True), f"{said}: stderr\n{result.err}\nexpected:\n{err}"


def test_only_the_readmes_opening_example_is_not_run() -> None:
    not_run = [b for b in CONSOLE if not b.run]
    assert [b.page for b in not_run] == ["README.md"]
    assert not_run[0] == CONSOLE[0], "the opening example is the README's first console block"


def test_every_python_example_is_one_the_suite_runs() -> None:
    assert sorted(b.text for b in blocks("python")) == sorted(
        [*readme_programs(), web_doc_program(), *page_programs(), *recipes()]
    )


def test_every_page_has_examples_the_suite_runs() -> None:
    """A page whose blocks all went unnoticed (a fence the parser missed) fails here."""
    assert len([b for b in CONSOLE if b.run]) >= 5
    assert {b.page for b in CONSOLE if b.run} >= {"README.md", "docs/usage.md"}


END = "\n\nFinal accumulated text: Hi\n"  # what stdout ends with
BAD = "messages_stream.py: error: bad (see --help)\n"


@pytest.mark.parametrize(
    ("shown", "out", "err"),
    [
        ("Hi" + END, "Hi" + END, ""),
        ("Hi" + END + "\nprovider: x\n", "Hi" + END, "\nprovider: x\n"),
        ("Hierror: x: y\n" + END, "Hi" + END, "error: x: y\n"),
        ("error: a\nhint: b\n" + END, END, "error: a\nhint: b\n"),
        (BAD, "", BAD),
    ],
    ids=["stdout only", "-v report", "error after text", "error and hint", "bad usage"],
)
def test_what_a_terminal_shows_is_split_into_stdout_and_stderr(shown: str, out: str, err: str) -> None:
    assert split(shown) == (out, err)


def test_patterns_stand_for_what_differs_and_nothing_else() -> None:
    assert matches("first delta: 1.034s  total: 1.037s\n", "first delta: 0.2s  total: 12.5s\n", numbers=True)
    assert not matches("first delta: 1.034s\n", "first delta: 1.034s \n", numbers=True)
    assert matches("error: u: …\n", "error: u: ClientPayloadError: cut (a.b)\n")
    assert not matches("deltas: 3\n", "deltas: 4\n", numbers=True)
    assert not matches("Hello (there)\n", "Hello there\n")


def test_commands_continue_after_a_backslash() -> None:
    (command,) = session('$ python messages_stream.py -p a \\\n      -s "Be brief." Hi\nHello\n')
    assert command.words == [*SCRIPT, "-p", "a", "-s", "Be brief.", "Hi"]
    assert command.shown == "Hello\n"


def test_the_readme_is_short() -> None:
    """The issue that made it short: a README a newcomer reads in five minutes."""
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


def test_the_paste_instruction_names_the_imports_the_core_needs() -> None:
    """The sentence names them; the README's program, which the suite runs with the core pasted
    in (tests/test_lifted.py), opens with exactly those, and g4f's."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sentence = readme.partition("with the five imports it needs: ")[2].partition(". ")[0]
    named = re.findall(r"`([\w.]+)`", sentence)
    first_group = readme_programs()[0].partition("\n\n")[0]
    imported = [m[1] or m[2] for m in re.finditer(r"^import (\w+)$|^from (\w+) import", first_group, re.M)]
    assert [n.partition(".")[0] for n in named] == imported and len(named) == 5, (named, imported)
