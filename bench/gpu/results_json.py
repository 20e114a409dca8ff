"""The PyTorch side's result file (torch_bench.py, torch_e2e.py): one JSON document, rewritten whole after every
change through a temporary file and a rename, so a run stopped at any moment leaves what it measured so far."""
import json
import os


class ResultsFile:
    def __init__(self, path, data):
        self.path = path
        self.data = data

    def error(self, what, exc):
        self.data["errors"][what] = f"{type(exc).__name__}: {exc}"[:400]
        self.save()

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=1)
        os.replace(tmp, self.path)
