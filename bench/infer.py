"""Inference cost of the multi-task model against the two single-task models, and end-to-end slide throughput.

    python bench/infer.py [--encoder resnet34] [--decoder_channels 256] [--size 256] [--bs 8] [--batches 5] [--workers 2] [--json PATH]
    python bench/infer.py --device cuda [--precision bf16] [--channels_last] [--slide_side 16384] [--workers 8] [--json PATH]
    python bench/infer.py --tia_python VENV/bin/python [--rounds 5] [--json PATH]   # against tiatoolbox (3. below)

1. Model: `predict_batch` (forward + probabilities) on the same seeded random uint8 windows for MTL (a decoder per
   task), MTL with a shared decoder, STL tissue and STL lymph, timed round-robin after warm-up (median of --batches);
   s/batch, tiles/s and the ratio MTL time / (STL tissue + STL lymph time). The goal is ≤ 0.6×.
2. Slide: `infer_slide` end to end (read, infer, blend, write all outputs) with the MTL model on the bundled synthetic
   slide, that slide tiled to --slide_side px square (a JPEG-tiled pyramidal TIFF in a temp dir), or --slide PATH.
   Megapixels/s of the output grid and tiles/s; the model's share of the time = batches the pipeline ran × the s/batch
   of part 1 (same model, bs and precision), so 1 − share is what is not model compute (GPU idle, or padding).
3. With --tia_python: the windows each slide runs before and after issue 14 and the wall time against tiatoolbox's
   `SemanticSegmentor` on the same model and both bundled slides, side by side (bench/vs_tiatoolbox.py, run as is).
On cuda the defaults are resnet50, 512×512 windows, batch 64, bf16, 8 workers and a 16384-px slide; goal ≥ 1000 tiles/s
on an H100. Ratios are meaningful within one run on one machine; absolute numbers only for the machine measured.
On a GPU machine, everything at once: bench/gpu.sh.
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np, torch
from til_kit.core import DATA_SAMPLES
from til_kit.data import IMAGENET_STATS
from til_kit.inference import predict_batch
from til_kit.io import Slide, write_pyramid_tiff
from til_kit.factory import build_model
from til_kit.slides import infer_slide
from til_kit.outputs import til_outputs

SYNTH = DATA_SAMPLES / 'tiger-synth/wsirois/wsi-level-annotations/images/synth-s0.tif'  # 3072×2048 RGB, 0.5 µm/px
VARIANTS = {'MTL': dict(tasks='tissue,lymph'), 'MTL shared decoder': dict(tasks='tissue,lymph', shared_decoder=True),
            'STL tissue': dict(tasks='tissue'), 'STL lymph': dict(tasks='lymph')}
DEFAULTS = {'cpu': dict(encoder='resnet34', size=256, bs=8, precision=['fp32'], workers=2, slide_side=0),
            'cuda': dict(encoder='resnet50', size=512, bs=64, precision=['bf16'], workers=8, slide_side=16384)}

def make_model(kw, a):
    "A random-initialised model of variant `kw` on the device, in eval mode."
    model = build_model(encoder=a.encoder, decoder_channels=a.decoder_channels, **kw).to(a.device).eval()
    return model.to(memory_format=torch.channels_last) if a.channels_last else model

def sync(device):
    if device.startswith('cuda'): torch.cuda.synchronize()

def batch_times(models, windows, precision, device, batches, warmup=2):
    "Median seconds per `predict_batch` call on `windows` (B, S, S, 3) uint8 for each of `models`, timed round-robin (robust to load drift)."
    def once(m):
        sync(device); t = time.perf_counter()
        predict_batch(m, windows, IMAGENET_STATS, precision=precision)
        sync(device); return time.perf_counter() - t
    for m in models.values():
        for _ in range(warmup): once(m)
    times = {v: [] for v in models}
    for _ in range(batches):
        for v, m in models.items(): times[v].append(once(m))
    return {v: float(np.median(t)) for v, t in times.items()}

def tiled_slide(side, folder):
    "The synthetic slide tiled to `side` × `side` px, written as a JPEG-tiled (512 px) pyramidal TIFF in `folder`."
    with Slide(SYNTH) as s: rgb = s.levels[0][:]
    big = np.tile(rgb, (-(-side // rgb.shape[0]), -(-side // rgb.shape[1]), 1))[:side, :side]
    path = Path(folder) / f'synth-{side}.tif'
    write_pyramid_tiff(path, big, 0.5, tile=512, compression='jpeg', mean=True)
    return path

def slide_run(a, path, folder, s_per_batch):
    "`infer_slide` with the MTL model on `path`: the summary, total seconds and the model's share of the time."
    model, calls = make_model(VARIANTS['MTL'], a), []
    model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    cfg = dict(tasks=['tissue', 'lymph'], stats=IMAGENET_STATS, spacing=0.5, size=a.size)
    sync(a.device); t = time.perf_counter()
    s = infer_slide(model, cfg, path, Path(folder) / "out", til_outputs, bs=a.bs, precision=a.precision[0], workers=a.workers)
    sync(a.device); total = time.perf_counter() - t
    model_s = len(calls) * s_per_batch
    grid_mp = s['width'] * s['height'] * (s['spacing'] / s['inference_spacing']) ** 2 / 1e6
    return dict(slide=str(path), width=s['width'], height=s['height'], windows=s['windows'], batches=len(calls), cells=s.get('cells'),
                total_s=total, loop_s=s['seconds'], outputs_s=total - s['seconds'], mp_per_s=grid_mp / total,
                tiles_per_s_loop=s['windows'] / s['seconds'], tiles_per_s_total=s['windows'] / total,
                model_s=model_s, model_share_loop=model_s / s['seconds'], model_share_total=model_s / total)

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--encoder')
    p.add_argument('--decoder_channels', type=int, default=256)
    p.add_argument('--size', type=int, help='window side in px')
    p.add_argument('--bs', type=int)
    p.add_argument('--batches', type=int, default=5, help='timed batches per model')
    p.add_argument('--precision', nargs='+', choices=['fp32', 'bf16'], help='the slide runs at the first')
    p.add_argument('--channels_last', action='store_true')
    p.add_argument('--workers', type=int, help='slide reader processes')
    p.add_argument('--threads', type=int, help="torch CPU threads (default: torch's)")
    p.add_argument('--slide', type=Path, help='slide to run (default: the synthetic one, tiled to --slide_side if > 0)')
    p.add_argument('--slide_side', type=int)
    p.add_argument('--no_slide', action='store_true', help='skip part 2')
    p.add_argument('--json', type=Path, help='also write the results here')
    p.add_argument('--tia_python', help='python of an environment with tiatoolbox 2.1.3: run part 3 only')
    p.add_argument('--rounds', type=int, default=3, help='part 3: interleaved rounds')
    a = p.parse_args()
    if a.tia_python:
        more = ['--json', str(a.json)] if a.json else []
        sys.exit(subprocess.run([sys.executable, str(Path(__file__).with_name('vs_tiatoolbox.py')), '--tia_python',
                                 a.tia_python, '--rounds', str(a.rounds), *more]).returncode)
    for k, v in DEFAULTS['cuda' if a.device.startswith('cuda') else 'cpu'].items():
        if getattr(a, k) is None: setattr(a, k, v)
    if a.device.startswith('cuda'): torch.backends.cudnn.benchmark = True
    if a.threads: torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    name = torch.cuda.get_device_name() if a.device.startswith('cuda') else f'{os.cpu_count()} CPU cores, {torch.get_num_threads()} threads'
    print(f'{a.encoder} (decoder {a.decoder_channels} ch), {a.size}×{a.size}, batch {a.bs}, {a.batches} timed batches, '
          f'channels_last {a.channels_last}; {name}; torch {torch.__version__}')
    windows = np.random.default_rng(0).integers(0, 256, (a.bs, a.size, a.size, 3), dtype=np.uint8)
    models, rows, times = {v: make_model(kw, a) for v, kw in VARIANTS.items()}, [], {}
    for prec in a.precision:
        for v, t in batch_times(models, windows, prec, a.device, a.batches).items():
            times[prec, v] = t
            rows.append(dict(variant=v, precision=prec, s_per_batch=t, tiles_per_s=a.bs / t))
            print(f'{prec:5s} {v:20s} {t * 1000:9.1f} ms/batch {a.bs / t:9.1f} tiles/s')
        pair = times[prec, 'STL tissue'] + times[prec, 'STL lymph']
        for v in ('MTL', 'MTL shared decoder'):
            r = times[prec, v] / pair
            print(f'{prec:5s} {v}: {r:.2f}× the time of STL tissue + STL lymph (goal ≤ 0.60: {"met" if r <= 0.6 else "not met"})')
    slide, models = None, None  # free the four models before the slide run
    if not a.no_slide:
        with tempfile.TemporaryDirectory() as tmp:
            path = a.slide or (tiled_slide(a.slide_side, tmp) if a.slide_side else SYNTH)
            slide = slide_run(a, path, tmp, times[a.precision[0], 'MTL'])
        r = slide
        print(f'\nslide {Path(r["slide"]).name} ({r["width"]}×{r["height"]} px), MTL, {a.precision[0]}, {a.workers} workers: '
              f'{r["windows"]} windows in {r["batches"]} batches, {r["cells"]} cells')
        print(f'  total {r["total_s"]:.1f} s = read+infer loop {r["loop_s"]:.1f} s + setup and outputs {r["outputs_s"]:.1f} s')
        print(f'  {r["mp_per_s"]:.2f} MP/s of slide; {r["tiles_per_s_loop"]:.1f} tiles/s in the loop, {r["tiles_per_s_total"]:.1f} tiles/s overall')
        print(f'  model alone {r["model_s"]:.1f} s: {r["model_share_loop"]:.0%} of the loop, {r["model_share_total"]:.0%} of the total '
              f'(idle share {1 - r["model_share_loop"]:.0%} / {1 - r["model_share_total"]:.0%})')
        if a.device.startswith('cuda'): print(f'  goal ≥ 1000 tiles/s: {"met" if r["tiles_per_s_loop"] >= 1000 else "not met"} (loop)')
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(dict(args={k: str(v) for k, v in vars(a).items()}, device=name, rows=rows, slide=slide), indent=1))

if __name__ == '__main__':
    main()
