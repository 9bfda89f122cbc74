"""The README's quick start, run as written: every command of its code
block, in order, on the campaign `init` writes, exits 0 and the full stage
sends everyone the canary did not. The README is read here, so the test
follows the words and the words must follow the product. Also: the
sections the files init writes point at exist."""
import os
import re
import shlex
import subprocess

import support
from support import run

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def quick_start_commands(text):
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()  # the comments explain; they are not arguments
        if line:
            commands.append(shlex.split(line))
    return commands


class QuickStart(support.Case):
    def test_the_quick_start_runs_as_written(self):
        commands = quick_start_commands(readme())
        self.assertGreaterEqual(len(commands), 8)
        names = [c[1] for c in commands]
        for needed in ("init", "lint", "send", "approve", "status"):
            self.assertIn(needed, names)
        stages = [c[c.index("--stage") + 1] for c in commands if "--stage" in c]
        self.assertEqual(stages, ["test", "canary", "full"], "the stages in their order")
        outputs = {}
        for c in commands:
            self.assertEqual(c[0], "build/blindcast")
            args = [os.path.join(self.tmp, a) if a == "my-campaign" else a for a in c[1:]]
            args = [os.path.join(self.tmp, "preview") if a == "/tmp/preview" else a for a in args]
            out = subprocess.run([support.BINARY, *args], capture_output=True, text=True, cwd=self.tmp,
                                 stdin=subprocess.DEVNULL, timeout=300)
            self.assertEqual(out.returncode, 0, f"{' '.join(c)} exited {out.returncode}:\n{out.stderr[-2000:]}")
            outputs[" ".join(c[1:3] + c[3:5])] = out.stdout
        st = support.status(os.path.join(self.tmp, "my-campaign"))
        rows = len(support.audience_emails(os.path.join(self.tmp, "my-campaign", "audience.csv")))
        self.assertEqual(st["states"]["sent"], rows, st["states"])
        # The canary was a sample, not the whole audience: the full stage sent the rest.
        self.assertRegex(outputs["send my-campaign --stage full"], r"full via .*: [1-9]\d* sent this run")

    def test_the_sections_init_points_at_exist(self):
        d = os.path.join(self.tmp, "c")
        run("init", d, check=0)
        headings = set(re.findall(r"^#+ (.+)$", readme(), re.M))
        for written in ("campaign.toml", ".gitignore"):
            with open(os.path.join(d, written)) as f:
                first = f.readline()
            named = re.findall(r'"([^"]+)"', first)
            self.assertTrue(named, first)
            for name in named:
                self.assertIn(name, headings, f"{written} names README section {name!r}")


if __name__ == "__main__":
    support.main()
