"""Stain normalisation against the kit's stain augmentation, on the held-out real quarter: a trained `til_demo` model
(trained with HED jitter) predicts the quarter as it is and after Macenko normalisation to a reference image, and
each prediction is scored with TIGER's metrics.

    python bench/stain_norm.py DEMO_OUT [--reference synthetic|real] [--torchstain PATH]

DEMO_OUT is the output folder of a `til_demo` run (its model and its cut of the real crop are used). Macenko comes
from torchstain (1.4.1, numpy backend); it is not a dependency of the kit: install it anywhere
(`pip install --target PATH --no-deps torchstain==1.4.1`) and pass PATH, or have it installed. The reference is the
first synthetic tissue-cells ROI of `data_samples/tiger-synth` (`synthetic`: normalise real pixels to what the model
mostly saw) or the first real training quarter (`real`). Prints one row per variant: precision, recall, F1, FROC.
"""
import argparse, sys, tempfile
from pathlib import Path
import numpy as np
from PIL import Image
from til_kit.core import DATA_SAMPLES
from til_kit.demo import REAL_HELD_OUT
from til_kit.factory import infer
from til_kit.evaluate import evaluate

def macenko(reference: np.ndarray):
    "A function normalising RGB uint8 images to the stains of `reference` (torchstain's Macenko, numpy backend)."
    import torchstain
    n = torchstain.normalizers.MacenkoNormalizer(backend='numpy')
    n.fit(reference)
    return lambda img: np.clip(n.normalize(I=img, stains=False)[0], 0, 255).astype(np.uint8)

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('demo_out', type=Path)
    p.add_argument('--reference', default='synthetic', choices=['synthetic', 'real'])
    p.add_argument('--torchstain', help='folder holding the torchstain package, if not installed')
    a = p.parse_args()
    if a.torchstain: sys.path.insert(0, a.torchstain)
    tc = 'wsirois/roi-level-annotations/tissue-cells/images'
    held = a.demo_out / 'data/real-held-out'
    ref = (sorted((DATA_SAMPLES / 'tiger-synth' / tc).glob('*.png'))[0] if a.reference == 'synthetic'
           else sorted((a.demo_out / 'data/real-train' / tc).glob('*.png'))[0])
    norm = macenko(np.asarray(Image.open(ref).convert('RGB')))
    image = np.asarray(Image.open(held / tc / REAL_HELD_OUT).convert('RGB'))
    model = a.demo_out / 'model/model.pth'
    print(f"{'variant':34s} {'P':>6s} {'R':>6s} {'F1':>6s} {'FROC':>6s}")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for name, img in (('as it is (HED jitter in training)', image), (f'Macenko to {a.reference} reference', norm(image))):
            src = d / name.split()[0] / REAL_HELD_OUT
            src.parent.mkdir()
            Image.fromarray(img).save(src)
            infer(src, model, d / f'{src.parent.name}-pred', spacing=0.5)
            r = evaluate(d / f'{src.parent.name}-pred', held)
            print(f"{name:34s} {r['precision']:6.3f} {r['recall']:6.3f} {r['f1']:6.3f} {r['froc']:6.3f}")

if __name__ == '__main__': main()
