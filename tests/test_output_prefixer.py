"""OutputPrefixer: every prefixed line is one write, runaway lines are split, threads never mix."""

import io
import threading

from agentos.workflows.parallel import OutputPrefixer


class Recorder(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def write(self, s: str) -> int:
        with self.lock:
            self.calls.append(s)
        return len(s)


def test_each_line_is_one_write() -> None:
    rec = Recorder()
    p = OutputPrefixer("[LLD-42]", rec)
    p.write("hello\nwor")
    assert rec.calls == ["[LLD-42] hello\n"]
    p.write("ld\n\nlast")
    assert rec.calls == ["[LLD-42] hello\n", "[LLD-42] world\n", "\n"]
    p.flush()
    assert rec.calls[-1] == "[LLD-42] last\n"


def test_defaults_to_stdout(capsys) -> None:  # type: ignore[no-untyped-def]
    p = OutputPrefixer("[X]")
    p.write("a\n")
    assert capsys.readouterr().out == "[X] a\n"


def test_max_line_splits_runaway_output() -> None:
    rec = Recorder()
    p = OutputPrefixer("[A]", rec, max_line=10)
    p.write("x" * 25)
    assert rec.calls == ["[A] " + "x" * 10 + "\n"] * 2
    p.flush()
    assert rec.calls[-1] == "[A] xxxxx\n"


def test_thread_safe_lines_never_mix() -> None:
    rec = Recorder()
    p = OutputPrefixer("[T]", rec)

    def spam(tag: str) -> None:
        for i in range(300):
            p.write(f"{tag}-{i}-")
            p.write("end\n")

    threads = [threading.Thread(target=spam, args=(t,)) for t in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rec.calls) == 1200
    assert all(c.startswith("[T] ") and c.endswith("\n") for c in rec.calls)
