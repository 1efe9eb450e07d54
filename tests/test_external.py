"""Files and folders from others never lead attnviz into another file, unless it is told to follow.

Each hostile file is built here with h5py, one for each way an HDF5 file can make the library read
another file, and a zip that holds a symbolic link; the files they point to (a canary trace, a
canary raw file, a canary plugin library) lie in a folder of their own. Every command runs on each
hostile file in its own process: it exits 1 with lines naming the file, the trace, the dataset and
what it points to, and the canaries' content appears in no output, no picture and no page. With
--allow-external the same files do show the canaries: the checks would see a leak.
"""

import json
import os
import stat
import zipfile

import h5py
import numpy as np
import pytest
from test_hostile import run_limited

from conftest import copy_like_arrays

SECRET = "CANARY-7f3e"  # the canary trace's metadata
VALUE = 7777.25  # every value the canaries hold; printed as 7777.25 or 7777
FILTER = 32123  # no HDF5 has it built in: reading data compressed with it searches HDF5_PLUGIN_PATH
SHAPE = copy_like_arrays()["inputs"].shape


def _trace(f, skip=()):
    for k, v in copy_like_arrays().items():
        if k not in skip:
            f.create_dataset(k, data=v)


def build_secrets(d):
    """What the hostile files point to: a trace full of VALUE with SECRET metadata, VALUE as raw bytes
    and as an .npy, a plugin library; and FIFOs of the same names, which block whoever opens them."""
    secret, fifos, plugins = d / "secret", d / "fifos", d / "plugins"
    for folder in (secret, fifos, plugins):
        folder.mkdir()
    canary = np.full(SHAPE, VALUE, np.float32)
    with h5py.File(secret / "canary.h5", "w") as f:
        _trace(f, skip=("inputs",))
        f["inputs"] = canary
        f.attrs.update(task="copy", secret=SECRET)
    canary.tofile(secret / "canary.bin")
    np.save(secret / "canary.npy", canary)
    for name in ("canary.h5", "canary.bin"):
        os.mkfifo(fifos / name)
    (plugins / "libcanary.so").write_bytes(open(h5py.h5z.__file__, "rb").read())  # any real shared library
    return secret


def build_hostile(d, secret):
    """One file per way out; relative names are found through HDF5_EXT_PREFIX and its kin."""
    files = {}

    def h5(name, make):
        files[name] = d / name
        with h5py.File(d / name, "w") as f:
            _trace(f, skip=("inputs",))
            make(f)

    h5("external_link.h5", lambda f: f.__setitem__("inputs", h5py.ExternalLink("canary.h5", "/inputs")))
    h5("external_link_absolute.h5",
       lambda f: f.__setitem__("inputs", h5py.ExternalLink(str(secret / "canary.h5"), "/inputs")))

    def soft_to_external(f):  # /inputs -> /via/e, /via -> /hidden, /hidden/e -> canary.h5:/inputs
        f.create_group("hidden")["e"] = h5py.ExternalLink("canary.h5", "/inputs")
        f["via"] = h5py.SoftLink("/hidden")
        f["inputs"] = h5py.SoftLink("/via/e")

    h5("soft_to_external.h5", soft_to_external)
    h5("external_storage.h5",
       lambda f: f.create_dataset("inputs", SHAPE, "f4", external=[("canary.bin", 0, 4 * np.prod(SHAPE))]))

    def virtual(f):
        layout = h5py.VirtualLayout(SHAPE, "f4")
        layout[:] = h5py.VirtualSource("canary.h5", "/inputs", SHAPE)
        f.create_virtual_dataset("inputs", layout)

    h5("virtual.h5", virtual)

    def filtered(f):  # one chunk, stored as is, but marked as passed through FILTER
        ds = f.create_dataset("inputs", SHAPE, "f4", chunks=SHAPE, compression=FILTER, allow_unknown_filter=True)
        ds.id.write_direct_chunk((0, 0), copy_like_arrays()["inputs"].tobytes(), filter_mask=0)

    h5("filter_plugin.h5", filtered)
    files["external_group.h5"] = d / "external_group.h5"
    with h5py.File(d / "external_group.h5", "w") as f:  # a whole trace in the other file
        f["t"] = h5py.ExternalLink("canary.h5", "/")

    files["zip_symlink.npz"] = d / "zip_symlink.npz"  # a zip member marked as a link to the canary .npy
    with zipfile.ZipFile(d / "zip_symlink.npz", "w") as z:
        for k, v in copy_like_arrays().items():
            if k != "inputs":
                with z.open(f"{k}.npy", "w") as fp:
                    np.lib.format.write_array(fp, v)
        link = zipfile.ZipInfo("inputs.npy")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, str(secret / "canary.npy"))
    return files


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("external")
    secret = build_secrets(d)
    (d / "hostile").mkdir()
    return d, build_hostile(d / "hostile", secret)


def env(d, targets="secret"):
    """HDF5's own prefixes for relative names lead to ``targets``; the dynamic loader logs every
    library it opens into d/ld.PID."""
    where = str(d / targets)
    return {"HDF5_EXT_PREFIX": where, "HDF5_VDS_PREFIX": where, "HDF5_EXTFILE_PREFIX": where,
            "HDF5_PLUGIN_PATH": str(d / "plugins"), "LD_DEBUG": "files", "LD_DEBUG_OUTPUT": str(d / "ld")}


def libraries_opened(d) -> str:
    """What the dynamic loader logged, and the logs removed."""
    text = ""
    for log in d.glob("ld.*"):
        text += log.read_text(errors="replace")
        log.unlink()
    return text


LOAD = ("-c", "import sys, attnviz\ntry:\n"
              "    attnviz.load(sys.argv[1], allow_external='--allow-external' in sys.argv)\n"
              "except attnviz.AttnvizError as e:\n    sys.exit(f'attnviz: error: {e}')")
COMMANDS = {
    "validate": ["validate", "F"],
    "inspect": ["inspect", "F"],
    "inspect --json": ["inspect", "F", "--json"],
    "plot": ["plot", "F", "--out-dir", "OUT", "-f", "png", "-f", "svg", "-f", "pdf", "-f", "html"],
    "animate": ["animate", "F", "-o", "OUT/a.gif"],
    "convert": ["convert", "F", "OUT/c.npz"],
    "load": ["F"],
}
# file: what its refusal says (beside the file's name)
REFUSALS = {
    "external_link.h5": "dataset 'inputs': is an external link to 'canary.h5:/inputs', in another file",
    "external_link_absolute.h5": "canary.h5:/inputs', in another file",
    "soft_to_external.h5": "dataset 'inputs': is a soft link to '/via/e', which leads to an external link to "
                           "'canary.h5:/inputs'",
    "external_storage.h5": "dataset 'inputs': keeps its values in 1 other file(s) ('canary.bin')",
    "virtual.h5": "dataset 'inputs': is a virtual dataset: its values are read from 1 other dataset(s) "
                  "('canary.h5:/inputs' first)",
    "filter_plugin.h5": "dataset 'inputs': is compressed with HDF5 filter 32123, which this HDF5 does not have",
    "external_group.h5": "no traces",  # not even looked for: the walk follows hard links only
    "zip_symlink.npz": "dataset 'inputs': is damaged or truncated",
}
CASES = [(f, c) for f in REFUSALS for c in COMMANDS]


def run(d, path, command, out, *extra, targets="secret", timeout=30):
    libraries_opened(d)  # a clean log
    args = [str(path) if a == "F" else a.replace("OUT", str(out)) for a in COMMANDS[command]]
    return run_limited(*args, *extra, env=env(d, targets), timeout=timeout,
                       **({"python": LOAD} if command == "load" else {}))


def assert_nothing_of_the_canaries(text: str):
    assert SECRET not in text and "7777" not in text, text[-3000:]


@pytest.mark.parametrize("name, command", CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_a_file_never_leads_into_another(world, tmp_path, name, command):
    d, files = world
    path, out = files[name], tmp_path / "out"
    out.mkdir()
    code, stdout, stderr, _, _ = run(d, path, command, out)
    assert code == 1, stderr
    lines = stderr.strip().splitlines()
    assert lines and all(line.startswith("attnviz: error: ") and str(path) in line for line in lines), stderr
    assert any(REFUSALS[name] in line for line in lines), stderr
    if name.endswith(".h5") and name != "external_group.h5":
        assert all("--allow-external" in line for line in lines if "dataset '" in line), stderr
    assert_nothing_of_the_canaries(stdout + stderr)
    written = sorted(p.name for p in out.rglob("*"))
    assert written in ([], ["index.html"]), written  # no picture, no page, no converted file
    for p in out.rglob("*"):
        assert_nothing_of_the_canaries(p.read_text(errors="replace"))
    assert "libcanary" not in libraries_opened(d)


@pytest.mark.parametrize("name", [n for n in REFUSALS if n.endswith(".h5") and "absolute" not in n
                                  and "group" not in n])
def test_refused_before_the_other_file_is_opened(world, tmp_path, name):
    """The names lead to FIFOs: opening one blocks until the time limit."""
    d, files = world
    code, _, stderr, _, _ = run(d, files[name], "inspect --json", tmp_path, targets="fifos", timeout=20)
    assert code == 1 and REFUSALS[name] in stderr, stderr


@pytest.mark.parametrize("name", ["external_link.h5", "external_link_absolute.h5", "soft_to_external.h5",
                                  "external_storage.h5", "virtual.h5"])
def test_allow_external_follows_them(world, tmp_path, name):
    """The canaries do show when following is asked for: the checks above would see a leak."""
    d, files = world
    code, stdout, stderr, _, _ = run(d, files[name], "inspect --json", tmp_path, "--allow-external")
    assert code == 0, stderr
    inputs = json.loads(stdout)[0]["traces"][0]["datasets"]["inputs"]
    assert inputs["min"] == inputs["max"] == VALUE
    code, _, stderr, _, _ = run(d, files[name], "load", tmp_path, "--allow-external")
    assert code == 0, stderr


def test_allow_external_lets_hdf5_look_for_a_filter_plugin(world, tmp_path):
    d, files = world
    libraries_opened(d)
    code, _, stderr, _, _ = run(d, files["filter_plugin.h5"], "validate", tmp_path, "--allow-external")
    assert code == 1 and "cannot be read" in stderr, stderr  # the library found is no filter
    assert "libcanary" in libraries_opened(d)


def test_a_zip_never_follows_a_link(world, tmp_path):
    d, files = world
    code, stdout, stderr, _, _ = run(d, files["zip_symlink.npz"], "inspect --json", tmp_path, "--allow-external")
    assert code == 1 and REFUSALS["zip_symlink.npz"] in stderr, stderr
    assert_nothing_of_the_canaries(stdout + stderr)


# ------------------------------------------------------------------------------------------ folders


@pytest.fixture(scope="module")
def shared(world):
    """A folder of traces with a symbolic link to the canary trace and one to the folder holding it."""
    d, _ = world
    folder = d / "shared"
    (folder / "sub").mkdir(parents=True)
    for path in (folder / "good.h5", folder / "sub" / "deep.h5"):
        with h5py.File(path, "w") as f:
            _trace(f)
    (folder / "link.h5").symlink_to(d / "secret" / "canary.h5")
    (folder / "sub" / "linked_dir").symlink_to(d / "secret")
    return folder


FOLDER_COMMANDS = {
    "validate": (["validate", "F"], 2),
    "inspect --json": (["inspect", "F", "--json"], 2),
    "plot": (["plot", "F", "--out-dir", "OUT", "-f", "png", "-f", "html"], 3),  # and the count of failures
    "animate": (["animate", "F", "-o", "OUT/a.gif"], 1),
}


@pytest.mark.parametrize("command", FOLDER_COMMANDS)
def test_a_folder_never_leads_out_of_itself(world, shared, tmp_path, command):
    d, _ = world
    args, n_lines = FOLDER_COMMANDS[command]
    args = [str(shared) if a == "F" else a.replace("OUT", str(tmp_path)) for a in args]
    code, stdout, stderr, _, _ = run_limited(*args, env=env(d))
    assert code == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == n_lines, stderr
    links = [line for line in lines if "is a symbolic link (to " in line]
    refused = [str(shared / "link.h5")] + ([] if command == "animate" else [str(shared / "sub/linked_dir")])
    assert [line.split(": ")[2] for line in links] == refused
    assert_nothing_of_the_canaries(stdout + stderr)
    for p in tmp_path.rglob("*"):
        assert_nothing_of_the_canaries(p.read_text(errors="replace"))
    if command == "plot":
        assert sorted(p.name for p in tmp_path.glob("*.png")) == ["good.png", "sub__deep.png"]
    if command == "inspect --json":
        assert [s["file"] for s in json.loads(stdout)] == [str(shared / "good.h5"), str(shared / "sub/deep.h5")]


def test_a_folder_link_is_followed_when_asked_and_a_named_link_always(world, shared, tmp_path):
    d, _ = world
    code, stdout, stderr, _, _ = run_limited("inspect", shared, "--json", "--allow-external", env=env(d))
    assert code == 0, stderr
    assert [s["file"] for s in json.loads(stdout)] == [str(shared / p) for p in (
        "good.h5", "link.h5", "sub/deep.h5", "sub/linked_dir/canary.h5")]
    assert SECRET in stdout
    code, stdout, stderr, _, _ = run_limited("validate", shared / "link.h5", env=env(d))  # named: the user's choice
    assert code == 0 and stdout.strip() == f"ok: {shared / 'link.h5'}", stderr


# ------------------------------------------------------------------ in this process: folders, API


def _folder_of_traces(root):
    """root/a.h5 (valid), root/x/b.npz (valid), root/x/y/bad.h5 (two problems), root/x/y/junk.h5 (no trace
    file at all), and root/notes.txt (not a trace file)."""
    from attnviz import Trace, save

    (root / "x" / "y").mkdir(parents=True)
    save(Trace(copy_like_arrays()), root / "a.h5")
    save(Trace(copy_like_arrays()), root / "x" / "b.npz")
    arrays = copy_like_arrays()
    arrays["inputs"][3, 0] = np.nan
    arrays["outputs"][2, 1] = np.inf
    with h5py.File(root / "x" / "y" / "bad.h5", "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    (root / "x" / "y" / "junk.h5").write_bytes(b"not a trace file")
    (root / "notes.txt").write_text("not a trace file either")


def test_validate_and_inspect_take_folders(runner, tmp_path):
    from conftest import run as run_cli

    _folder_of_traces(tmp_path / "traces")
    traces = tmp_path / "traces"
    result = run_cli(runner, "validate", traces)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"ok: {traces / 'a.h5'}", f"ok: {traces / 'x/b.npz'}"]
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ")[2] for line in lines] == [str(traces / "x/y/bad.h5")] * 2 + [str(traces / "x/y/junk.h5")]
    assert "dataset 'inputs': contains nan at step 3" in lines[0] and "dataset 'outputs': contains inf" in lines[1]
    assert "neither HDF5 nor NPZ" in lines[2]
    report = json.loads(run_cli(runner, "validate", traces, "--json").stdout)
    assert [(r["file"], len(r["problems"])) for r in report] == [
        (str(traces / "a.h5"), 0), (str(traces / "x/b.npz"), 0), (str(traces / "x/y/bad.h5"), 2),
        (str(traces / "x/y/junk.h5"), 1)]

    result = run_cli(runner, "inspect", traces, "--json")
    assert result.exit_code == 1
    summarized = [str(traces / p) for p in ("a.h5", "x/b.npz", "x/y/bad.h5")]
    assert [s["file"] for s in json.loads(result.stdout)] == summarized
    assert len(result.stderr.strip().splitlines()) == 3  # bad.h5's two problems, junk.h5

    (traces / "x" / "y" / "bad.h5").unlink()
    (traces / "x" / "y" / "junk.h5").unlink()
    for command in ("validate", "inspect"):
        result = run_cli(runner, command, traces, traces / "a.h5")
        assert result.exit_code == 0 and result.stderr == "", result.output
        result = run_cli(runner, command, traces / "x" / "y")
        assert result.exit_code == 1
        assert result.stderr.strip() == f"attnviz: error: {traces / 'x/y'}: holds no trace files (.h5, .hdf5, .npz)"


@pytest.mark.parametrize("command", ["validate", "inspect", "plot"])
def test_a_folder_that_cannot_be_listed_is_one_line(runner, tmp_path, monkeypatch, command):
    """Named on the command line or met inside a folder (as root, chmod cannot make one unreadable)."""
    from conftest import run as run_cli

    _folder_of_traces(tmp_path / "traces")
    traces, locked = tmp_path / "traces", [None]
    for name in ("x/y/bad.h5", "x/y/junk.h5"):
        (traces / name).unlink()
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == locked[0]:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    out = ["--out-dir", tmp_path / "out"] if command == "plot" else []
    for folder in (traces, traces / "x"):
        locked[0] = str(folder)
        result = run_cli(runner, command, traces, *out)
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()  # (the progress bar of plot leaves a blank line)
        assert lines[0] == f"attnviz: error: {folder}: folder cannot be read (Permission denied)"
        assert len(lines) == 1 + (folder != traces and command == "plot"), lines  # + plot's count of failures
    assert command != "plot" or sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.png"]


def test_plot_reports_an_empty_folder_as_validate_and_inspect_do(runner, tmp_path):
    from conftest import run as run_cli

    _folder_of_traces(tmp_path / "traces")
    traces, empty = tmp_path / "traces", tmp_path / "empty"
    empty.mkdir()
    for args in (["validate"], ["inspect"], ["plot", "--out-dir", tmp_path / "out"]):
        result = run_cli(runner, *args, traces / "a.h5", empty)
        assert result.exit_code == 1, result.output
        line = f"attnviz: error: {empty}: holds no trace files (.h5, .hdf5, .npz)"
        assert result.stderr.strip().splitlines()[0] == line, result.stderr
    assert (tmp_path / "out" / "a.png").is_file()
    result = run_cli(runner, "plot", empty)
    assert result.exit_code == 1 and result.stderr.strip() == line
    import attnviz

    assert [(p, e and e.problem) for p, e in attnviz.trace_entries([traces / "x", empty])] == [
        (traces / "x/b.npz", None), (traces / "x/y/bad.h5", None), (traces / "x/y/junk.h5", None),
        (empty, "holds no trace files (.h5, .hdf5, .npz)")]


def test_output_counts_only_the_traces_a_folder_holds_and_reports_its_refusals(runner, tmp_path):
    import attnviz

    from conftest import run as run_cli

    one = tmp_path / "one"
    one.mkdir()
    attnviz.save([attnviz.Trace(copy_like_arrays(seed=s), {}, f"s{s}") for s in range(2)], tmp_path / "two.h5")
    attnviz.save(attnviz.Trace(copy_like_arrays()), one / "good.h5")
    (one / "link.h5").symlink_to(tmp_path / "two.h5")
    refusal = f"attnviz: error: {one / 'link.h5'}: is a symbolic link (to {str(tmp_path / 'two.h5')!r})"
    for output in ("x.png", "x.html"):
        result = run_cli(runner, "plot", one, "-o", tmp_path / output)
        assert result.exit_code == 1, result.output
        assert result.stderr.strip().splitlines()[0].startswith(refusal), result.stderr
        assert result.stdout.strip() == f"wrote {tmp_path / output}"
    many = tmp_path / "many"  # a file of two traces, drawn on one page, and a link
    many.mkdir()
    (many / "two.h5").write_bytes((tmp_path / "two.h5").read_bytes())
    (many / "link.h5").symlink_to(tmp_path / "two.h5")
    result = run_cli(runner, "plot", many, "-o", tmp_path / "y.html")
    assert result.exit_code == 1 and result.stdout.strip() == f"wrote {tmp_path / 'y.html'}", result.output
    assert "link.h5: is a symbolic link" in result.stderr
    attnviz.save(attnviz.Trace(copy_like_arrays()), one / "more.h5")
    result = run_cli(runner, "plot", one, "-o", tmp_path / "y.png")
    assert result.exit_code == 1 and "--output names one file but there are 2 traces to draw" in result.stderr


def test_links_within_a_file_are_followed(tmp_path):
    """A soft link to a dataset of the same file is no way out: it is read as before."""
    import attnviz

    path = tmp_path / "soft.h5"
    with h5py.File(path, "w") as f:
        _trace(f.create_group("data"))
        g = f.create_group("t")
        for k in copy_like_arrays():  # relative to /t, "../data" names nothing: ".." is no parent in HDF5
            g[k] = h5py.SoftLink(f"/data/{k}" if k != "outputs" else "../data/outputs")
    with pytest.raises(attnviz.TraceError, match="dataset 'outputs': is a soft link to '../data/outputs' that "
                                                 "cannot be resolved"):
        attnviz.load(path, "t")
    with h5py.File(path, "a") as f:
        del f["t/outputs"]
        f["t/outputs"] = h5py.SoftLink("/data/outputs")
    data = attnviz.load(path, "data")
    assert attnviz.load(path, "t") == attnviz.Trace(data.arrays, data.metadata, "t")
    assert attnviz.validate_file(path) == []


def test_the_api_follows_when_asked(world, monkeypatch):
    import attnviz

    d, files = world
    monkeypatch.setenv("HDF5_EXT_PREFIX", str(d / "secret"))
    with pytest.raises(attnviz.TraceError, match="external link to 'canary.h5:/inputs'"):
        attnviz.load(files["external_link.h5"])
    assert any("external link" in line for line in attnviz.validate_file(files["external_link.h5"]))
    trace = attnviz.load(files["external_link.h5"], allow_external=True)
    assert (trace.inputs == VALUE).all()
    assert attnviz.validate_file(files["external_link.h5"], allow_external=True) == []


def test_a_group_reached_through_an_external_link_is_never_searched(world, tmp_path, monkeypatch):
    """--allow-external follows a trace's datasets into other files; it finds no trace there."""
    import attnviz

    d, _ = world
    monkeypatch.setenv("HDF5_EXT_PREFIX", str(d / "secret"))
    path = tmp_path / "linked_group.h5"
    with h5py.File(path, "w") as f:
        f["t"] = h5py.ExternalLink("canary.h5", "/")
    with h5py.File(path, "r") as f:
        assert f["t/inputs"].shape == SHAPE  # HDF5 itself follows the link to the canary trace
    for allow in (False, True):
        assert attnviz.list_traces(path, allow_external=allow) == []


def test_a_run_folder_does_not_follow_links(world, tmp_path, runner):
    import attnviz

    from conftest import run as run_cli

    d, files = world
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.csv").write_text("step,sequences\n50,1600\n")
    (run_dir / "traces.h5").symlink_to(d / "secret" / "canary.h5")
    with pytest.raises(attnviz.TraceError, match="traces.h5: is a symbolic link"):
        attnviz.plot_run(run_dir)
    assert not (run_dir / "figures").exists()
    (run_dir / "traces.h5").unlink()  # traces refused once the curves are drawn: the curves are listed
    (run_dir / "traces.h5").write_bytes(files["external_link.h5"].read_bytes())
    written = []
    with pytest.raises(attnviz.TraceError, match="dataset 'inputs': is an external link"):
        attnviz.plot_run(run_dir, on_write=written.append)
    assert written == [run_dir / "figures" / "learning_curves.png"] and written[0].is_file()
    result = run_cli(runner, "plot", run_dir, "-f", "html")
    assert result.exit_code == 1 and result.stdout == f"wrote {written[0]}\n", result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "is an external link" in result.stderr


@pytest.mark.parametrize("data", [
    [], {}, [[]], {"a": {}}, [1, 2.5, -0.0, 1e300, float("nan"), float("inf"), -float("inf"), True, False, None],
    {"k": "é\n\"\\\x00\u2028"}, {2: 2, 2.5: 3, True: 4, None: 5, "x": [1, {"z": [], "w": ()}]}, "x", 3, (),
])
def test_json_is_written_as_json_writes_it(data):
    from attnviz.cli import _json_parts

    parts = []
    _json_parts(data, parts, "\n", parts.append)
    assert "".join(parts) == json.dumps(data, indent=2)


def test_json_of_a_summary_is_written_as_json_writes_it(tmp_path):
    import attnviz
    from attnviz.cli import _json_parts

    save_path = tmp_path / "t.h5"
    attnviz.save([attnviz.Trace(copy_like_arrays(full=True, seed=s), {"task": "copy", "step": s, "x": 0.1}, f"s{s}")
                  for s in range(3)], save_path)
    data = [attnviz.summarize(save_path)] * 2
    written = []
    _json_parts(data, written, "\n", written.append)
    assert "".join(written) == json.dumps(data, indent=2)


def test_soft_links_are_followed_as_hdf5_follows_them(tmp_path):
    """At most 16 soft links on the way to a dataset, in all, as HDF5 counts them: links whose
    targets fan out ("l0" -> "/l1/l1/l1/l1", "l1" -> "/l2/l2/l2/l2", ..., "l20" -> "/") are refused
    at once instead of being resolved 4**20 times; 16 links in a row are followed, as by HDF5."""
    path = tmp_path / "fan.h5"
    with h5py.File(path, "w") as f:
        _trace(f.create_group("t"), skip=("inputs",))
        f["t/inputs"] = h5py.SoftLink("/l0")
        for i in range(20):
            f[f"l{i}"] = h5py.SoftLink("/".join([f"/l{i + 1}"] * 4))
        f["l20"] = h5py.SoftLink("/")
        _trace(f.create_group("u"), skip=("inputs",))
        f["store/x"] = copy_like_arrays()["inputs"]
        f["u/inputs"] = h5py.SoftLink("/m1")
        for i in range(1, 15):
            f[f"m{i}"] = h5py.SoftLink(f"/m{i + 1}")
        f["m15"] = h5py.SoftLink("/store/x")  # the 16th link
    code, _, stderr, _, _ = run_limited("validate", path, timeout=20)
    assert code == 1 and stderr.strip().splitlines() == [
        f"attnviz: error: {path}: trace 't': dataset 'inputs': is a soft link to '/l0' that cannot be resolved (a "
        "missing target, or links that point at each other)"]
    with h5py.File(path, "r") as f:
        assert f["u/inputs"].shape == (11, 9)  # HDF5 follows the 16, as attnviz does
        with pytest.raises(RuntimeError, match="too many links"):
            f["t/inputs"]
