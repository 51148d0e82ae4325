"""The GPU measurements of bench/gpu.sh, in one process, printed as one table (and written as JSON).

    python bench/gpu.py [--json PATH] [--budget_s 420]
    python bench/gpu.py --dry_run        # on a CPU: every part with tiny sizes, to show it runs end to end

1. training: samples/s of one R50 multi-task training step at 512² (forward, multi-task loss, backward, Adam;
   `bench/train.py`'s `step_time`), fp32 against bf16 autocast + channels-last. Goals: ≥ 400 samples/s, ≥ 3× fp32.
2. slide: `infer_slide` end to end (read, infer, blend, write the maps) with the R50 model, 512-px windows overlapping
   by 128, bf16, channels-last, batch 64, 8 reader processes, on a JPEG-tiled pyramidal TIFF made by repeating the
   synthetic slide, sized from the model's measured speed so that the run lasts about a minute. Tiles/s; GPU idle share
   = 1 − mean NVML utilisation sampled every 50 ms during the run (or, without NVML, 1 − model time / loop time).
   Goals: ≥ 1,000 tiles/s of 512², GPU idle < 10 %.
3. processes: `til_train` and `til_infer` over a small cohort under a distributed launcher with one process (see
   bench/gpu.sh: NCCL on CUDA, gloo on a CPU); their first line must say how many processes run with what. Where this
   branch's commands do not say it (the distributed parts not merged yet), the row reads "skipped: not available".
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, threading, time
from pathlib import Path
import numpy as np, tifffile, torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from train import step_time  # noqa: E402  (bench/train.py)
from til_kit.core import DATA_SAMPLES  # noqa: E402
from til_kit.data import IMAGENET_STATS  # noqa: E402
from til_kit.factory import build_model  # noqa: E402
from til_kit.inference import predict_batch, grid_starts  # noqa: E402
from til_kit.io import Slide, write_pyramid_tiff  # noqa: E402
from til_kit.slides import infer_slide  # noqa: E402

SYNTH = DATA_SAMPLES / 'tiger-synth/wsirois/wsi-level-annotations/images/synth-s0.tif'
FULL = dict(size=512, train_bs=32, steps=10, infer_bs=64, workers=8, seconds=60, max_side=131072)
DRY = dict(size=64, train_bs=2, steps=1, infer_bs=4, workers=1, seconds=2, max_side=2048)

class Periodic:
    "A read-only (H, W, 3) array-like that repeats `base`: a slide of any size, made lazily."
    def __init__(self, base: np.ndarray, shape):
        self.base, self.shape, self.dtype, self.ndim = base, tuple(shape) + base.shape[2:], base.dtype, base.ndim
    def __getitem__(self, key):
        (ys, xs), (bh, bw) = key[:2], self.base.shape[:2]
        rows = np.arange(*ys.indices(self.shape[0])) % bh
        cols = np.arange(*xs.indices(self.shape[1])) % bw
        return self.base[np.ix_(rows, cols)]

TIFF = dict(photometric='rgb', metadata=None, resolutionunit='CENTIMETER', compression='jpeg',
            compressionargs={'level': 90})  # as til_kit.io.write_tiff_levels writes JPEG slides

def encoded_tiles(base: np.ndarray, tile: int, folder: Path) -> list:
    "The JPEG bytes of the `tile`-px tiles of `base` (sides multiples of `tile`), row by row, as tifffile encodes."
    f = folder / 'base.tif'
    tifffile.imwrite(f, base, tile=(tile, tile), **TIFF)
    with tifffile.TiffFile(f) as t:
        page, fh, out = t.pages[0], t.filehandle, []
        for off, n in zip(page.dataoffsets, page.databytecounts):
            fh.seek(off)
            out.append(fh.read(n))
    f.unlink()
    return out

def big_slide(path: Path, side: int, tile: int = 512) -> Path:
    """A `side` × `side` JPEG-tiled pyramidal TIFF at 0.5 µm/px repeating the synthetic slide. Levels whose period is
    whole tiles repeat the period's tiles, encoded once (a 131,072-px slide in seconds); the others are encoded."""
    with Slide(SYNTH) as s: base = [np.asarray(s.levels[0][:])[..., :3]]
    while base[-1].shape[0] % 2 == 0 and base[-1].shape[1] % 2 == 0 and side >> (len(base) - 1) > tile:
        b = base[-1].astype(np.float32)
        base.append(((b[0::2, 0::2] + b[1::2, 0::2] + b[0::2, 1::2] + b[1::2, 1::2]) / 4).round().astype(np.uint8))
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        for i, b in enumerate(base):
            n = -(-side // 2 ** i)
            opts = dict(shape=(n, n, 3), dtype=np.uint8, tile=(tile, tile), subfiletype=1 if i else 0,
                        resolution=(1e4 / (0.5 * 2 ** i),) * 2, **TIFF)
            if n % tile == 0 and b.shape[0] % tile == 0 and b.shape[1] % tile == 0:
                enc, (pr, pc) = encoded_tiles(b, tile, path.parent), (b.shape[0] // tile, b.shape[1] // tile)
                data = (enc[(r % pr) * pc + c % pc] for r in range(n // tile) for c in range(n // tile))
            else:
                lvl = Periodic(b, (n, n))
                data = (lvl[y:y + tile, x:x + tile] for y in range(0, n, tile) for x in range(0, n, tile))
            tw.write(data, **opts)
    return path

def training(a, p):
    "Samples/s of the R50 MTL step at fp32 and at bf16 + channels-last."
    kw, rows = dict(tasks='tissue,lymph'), {}
    for name, prec, cl in (('fp32', 'fp32', False), ('bf16+channels_last', 'bf16', True)):
        t = step_time(kw, 'resnet50', 256, p['size'], p['train_bs'], p['steps'], a.device, prec, cl,
                      warmup=1 if a.dry_run else 3)
        rows[name] = p['train_bs'] / t
    return rows

class Utilisation(threading.Thread):
    "Samples the GPU's NVML utilisation (%) every 50 ms until stopped; `samples` stays empty without NVML."
    def __init__(self):
        super().__init__(daemon=True)
        self.samples, self.stop = [], threading.Event()
    def run(self):
        while not self.stop.wait(0.05):
            try: self.samples.append(torch.cuda.utilization())
            except Exception: return

def maps_only(pred, folder, summary):
    "A writer that keeps the engine's maps (already written block by block) and draws the thumbnail."
    import matplotlib.pyplot as plt
    summary['maps'] = sorted(pred.maps)
    fig = plt.figure(figsize=(2, 2))
    plt.imshow(pred.thumb)
    return fig

def slide_throughput(a, p, tmp: Path):
    "End-to-end tiles/s and GPU idle share of `infer_slide` on a slide sized to last about p['seconds']."
    cuda = a.device.startswith('cuda')
    model = build_model('tissue,lymph', encoder='resnet50').to(a.device).eval()
    model = model.to(memory_format=torch.channels_last)
    cfg = dict(tasks=['tissue', 'lymph'], stats=[list(s) for s in IMAGENET_STATS], spacing=0.5, size=p['size'])
    prec = 'bf16' if cuda else 'fp32'
    x = np.random.default_rng(0).integers(0, 256, (p['infer_bs'], p['size'], p['size'], 3), dtype=np.uint8)
    for _ in range(3): predict_batch(model, x, cfg['stats'], precision=prec)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    t = time.perf_counter()
    for _ in range(5): predict_batch(model, x, cfg['stats'], precision=prec)
    sync()
    s_per_batch = (time.perf_counter() - t) / 5
    model_tiles_s = p['infer_bs'] / s_per_batch
    step = p['size'] - p['size'] // 4
    side = int(min(p['max_side'], max(4 * p['size'], step * np.sqrt(model_tiles_s * p['seconds'] / 0.6))))
    side = -(-side // 512) * 512  # tissue covers about 60 % of the synthetic slide
    t = time.perf_counter()
    path = big_slide(tmp / f'big-{side}.tif', side)
    make_s = time.perf_counter() - t
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    util = Utilisation()
    if cuda: util.start()
    sync()
    t = time.perf_counter()
    s = infer_slide(model, cfg, path, tmp / 'out', maps_only, bs=p['infer_bs'], precision=prec, workers=p['workers'],
                    block=8192)
    sync()
    total = time.perf_counter() - t
    util.stop.set()
    idle = 1 - np.mean(util.samples) / 100 if util.samples else 1 - len(calls) * s_per_batch / s['seconds']
    shutil.rmtree(tmp / 'out', ignore_errors=True)
    path.unlink()
    return dict(side=side, make_s=make_s, windows=s['windows'], loop_s=s['seconds'], total_s=total,
                tiles_per_s=s['windows'] / s['seconds'], tiles_per_s_total=s['windows'] / total,
                model_tiles_per_s=model_tiles_s, idle=float(idle), idle_from='NVML' if util.samples else 'model time')

def banner(out: str):
    "The line in which a command says how many processes run, and with what (None if it says none)."
    return next((l.strip() for l in out.splitlines() if ' process' in l and '(' in l), None)

def launched(launcher: list, args: list, env, timeout):
    "(status, detail) of one command under the distributed launcher."
    try:
        r = subprocess.run(launcher + args, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired: return 'FAIL', f'timed out after {timeout} s'
    out = r.stdout + r.stderr
    if r.returncode and 'unrecognized arguments' in out: return 'skipped: not available', out.strip().splitlines()[-1]
    if r.returncode: return 'FAIL', (out.strip().splitlines() or ['(no output)'])[-1][:150]
    b = banner(out)
    return ('ok', b) if b else ('skipped: not available', 'ran, but says nothing of processes (not on this branch)')

def processes(a, p, tmp: Path):
    "til_train and a cohort til_infer under the launcher named in $LAUNCH (bench/gpu.sh sets it)."
    launcher, env = os.environ.get('LAUNCH', 'torchrun --standalone --nproc_per_node 1').split(), dict(os.environ)
    bins = os.environ.get('TIL_BIN', '')
    til = lambda name: str(Path(bins) / name) if bins else shutil.which(name) or name
    size = 128 if a.dry_run else 256
    rows = {}
    train = ['--out', str(tmp / 'run'), '--epochs', '1', '--epoch_len', str(8 if a.dry_run else 256), '--bs', '8',
             '--size', str(size), '--encoder', 'resnet18', '--decoder_channels', '64', '--workers', '2']
    rows['til_train'] = launched(launcher, [til('til_train'), str(DATA_SAMPLES / 'tiger-synth')] + train, env, 180)
    cohort = tmp / 'cohort'
    cohort.mkdir(exist_ok=True)
    with Slide(SYNTH) as s: rgb = np.asarray(s.levels[0][:])[..., :3]
    for i in range(3):  # the synthetic slide, or in a dry run three 512-px crops of it
        if a.dry_run:
            write_pyramid_tiff(cohort / f'slide-{i}.tif', rgb[768:1280, 768 + 512 * i:1280 + 512 * i], 0.5, tile=256)
        else:
            shutil.copy(SYNTH, cohort / f'slide-{i}.tif')
    model = tmp / 'run' / 'model.pth'
    if not model.exists(): return rows | {'til_infer cohort': ('skipped: not available', 'no model from til_train')}
    status, detail = launched(launcher, [til('til_infer'), str(cohort), str(model), '--out', str(tmp / 'pred'),
                                         '--workers', '2'], env, 180)
    if status == 'ok' and not (tmp / 'pred' / 'cohort.csv').exists(): detail += '; no cohort.csv'
    rows['til_infer cohort'] = (status, detail)
    return rows

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--dry_run', action='store_true', help='tiny sizes on the CPU: shows every part runs')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--parts', default='train,slide,processes')
    p.add_argument('--json', type=Path)
    a = p.parse_args()
    prm, parts = DRY if a.dry_run else FULL, a.parts.split(',')
    if a.device.startswith('cuda'): torch.backends.cudnn.benchmark = True
    dev = torch.cuda.get_device_name() if a.device.startswith('cuda') else f'CPU ({os.cpu_count()} cores)'
    res, table = dict(device=dev, dry_run=a.dry_run), []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if 'train' in parts:
            t0 = time.perf_counter()
            tr = res['train'] = training(a, prm)
            speedup = tr['bf16+channels_last'] / tr['fp32']
            table += [(f'train R50 MTL {prm["size"]}², bs {prm["train_bs"]}', 'fp32 samples/s', f'{tr["fp32"]:.1f}',
                       ''),
                      ('', 'bf16+CL samples/s', f'{tr["bf16+channels_last"]:.1f}', '≥ 400'),
                      ('', 'bf16+CL ÷ fp32', f'{speedup:.2f}×', '≥ 3×'),
                      ('', 'seconds', f'{time.perf_counter() - t0:.0f}', '')]
        if 'slide' in parts:
            sl = res['slide'] = slide_throughput(a, prm, tmp)
            table += [(f'slide {sl["side"]}² JPEG, {prm["size"]}-px windows', 'windows', f'{sl["windows"]:,}', ''),
                      ('', 'made in / loop / total s', f'{sl["make_s"]:.0f} / {sl["loop_s"]:.0f} / '
                       f'{sl["total_s"]:.0f}', 'loop ≥ 60'),
                      ('', 'tiles/s (loop, total)', f'{sl["tiles_per_s"]:.0f}, {sl["tiles_per_s_total"]:.0f}',
                       '≥ 1000'),
                      ('', 'model alone tiles/s', f'{sl["model_tiles_per_s"]:.0f}', ''),
                      ('', f'GPU idle ({sl["idle_from"]})', f'{sl["idle"]:.0%}', '< 10 %')]
        if 'processes' in parts:
            pr = res['processes'] = processes(a, prm, tmp)
            launcher = os.environ.get('LAUNCH', 'torchrun').split()[0]
            table += [(f'{launcher}, 1 process', k, s, d)
                      for k, (s, d) in pr.items()]
    print(f'\n{dev}; torch {torch.__version__}{" (dry run: tiny sizes)" if a.dry_run else ""}')
    w = [max(len(str(r[i])) for r in table) for i in range(3)]
    for r in table: print(f'{r[0]:{w[0]}s} | {r[1]:{w[1]}s} | {r[2]:>{w[2]}s} | {r[3]}')
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1, default=str))

if __name__ == '__main__':
    main()
