"""Held-out quality of the multi-task model and both single-task models, each trained by `til_train` on CPU.

    python bench/quality.py [--out bench/_out/quality] [--epochs 8] [--epoch_len 512] [--size 192]

Synthesises a training set (seed 1) and a held-out set (seed 1000, never trained on) with `til_synth`, trains
MTL (tissue,lymph), STL tissue and STL lymph with the same budget via the `til_train` command, and prints the
held-out tumour/stroma Dice and lymphocyte F1 (4 µm, one-to-one) of the last epoch with each run's wall time;
draws OUT/quality.png (the last epoch's metrics side by side) and OUT/curves.png (the learning curves of all runs).
`--plot` redraws the two figures from the runs already in OUT.
"""
import argparse, json, subprocess, sys, time
from pathlib import Path
import matplotlib
matplotlib.use('Agg')
from til_kit.learner import plot_curves, plot_final

RUNS = {'MTL': 'tissue,lymph', 'STL tissue': 'tissue', 'STL lymph': 'lymph'}

def sh(*args):
    print('$', ' '.join(map(str, args)), flush=True)
    subprocess.run([str(a) for a in args], check=True)

def plot(out: Path, labels: list[str]):
    "quality.png and curves.png from the metrics.json of the runs `labels` in `out`."
    runs = {l: json.loads((out / l.replace(' ', '-') / 'metrics.json').read_text())['history'] for l in labels}
    plot_curves(runs).savefig(out / 'curves.png', dpi=100)
    ax = plot_final(runs)
    ax.set_title('held-out synthetic ROIs: multi-task vs single-task, same budget', loc='left', fontsize=10)
    ax.figure.savefig(out / 'quality.png', dpi=100, bbox_inches='tight')
    print(f'wrote {out / "quality.png"} and {out / "curves.png"}')

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', type=Path, default=Path('bench/_out/quality'))
    p.add_argument('--n', type=int, default=24, help='training ROIs per subset')
    p.add_argument('--encoder', default='resnet18')
    p.add_argument('--decoder_channels', type=int, default=64)
    p.add_argument('--size', type=int, default=192)
    p.add_argument('--bs', type=int, default=8)
    p.add_argument('--epochs', type=int, default=8)
    p.add_argument('--epoch_len', type=int, default=512)
    p.add_argument('--lr', type=float, default=2e-3)
    p.add_argument('--runs', nargs='+', default=list(RUNS), choices=list(RUNS))
    p.add_argument('--plot', action='store_true', help='only redraw the figures from the runs in OUT')
    a = p.parse_args()
    if a.plot: return plot(a.out, a.runs)
    train, held = a.out / 'train', a.out / 'held-out'
    sh('til_synth', train, '--n', a.n, '--seed', 1, '--slide_width', 0, '--overwrite')
    sh('til_synth', held, '--n', 6, '--seed', 1000, '--slide_width', 0, '--overwrite')
    results = {}
    for label in a.runs:
        run = a.out / label.replace(' ', '-')
        t = time.time()
        sh('til_train', train, '--tasks', RUNS[label], '--valid', held, '--out', run, '--encoder', a.encoder,
           '--decoder_channels', a.decoder_channels, '--size', a.size, '--bs', a.bs, '--epochs', a.epochs,
           '--epoch_len', a.epoch_len, '--lr', a.lr)
        final = json.loads((run / 'metrics.json').read_text())['final']
        results[label] = dict(minutes=round((time.time() - t) / 60, 1), **{k: final.get(f'valid_{k}') for k in ('dice_tumor', 'dice_stroma', 'lymph_f1')})
    print(f'\n{"run":12s} {"tumour Dice":>12s} {"stroma Dice":>12s} {"lymph F1":>9s} {"minutes":>8s}')
    fmt = lambda v, w: f'{v:{w}.3f}' if v is not None else f'{"—":>{w}s}'
    for label, r in results.items():
        print(f'{label:12s} {fmt(r["dice_tumor"], 12)} {fmt(r["dice_stroma"], 12)} {fmt(r["lymph_f1"], 9)} {r["minutes"]:8.1f}')
    (a.out / 'quality.json').write_text(json.dumps(dict(args={k: str(v) for k, v in vars(a).items()}, results=results), indent=1))
    plot(a.out, a.runs)

if __name__ == '__main__':
    sys.exit(main())
