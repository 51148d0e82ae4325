# TIGER challenge container (grand-challenge): reads /input/<slide>.tif and /input/images/<tissue mask>.tif, writes
# /output/images/breast-cancer-segmentation-for-tils/segmentation.tif, /output/detected-lymphocytes.json and
# /output/til-score.json (the layout of DIAGNijmegen/pathology-tiger-algorithm-example, tigeralgorithmexample/gcio.py).
# Build from the repository root with a trained model beside this file:  docker build -t til-kit-tiger .
# See README.md, "TIGER's challenge container".
FROM pytorch/pytorch:2.4.1-cuda12.1-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY settings.ini setup.py README.md LICENSE MANIFEST.in /opt/til_kit/src/
COPY til_kit /opt/til_kit/src/til_kit
RUN pip install /opt/til_kit/src && rm -rf /opt/til_kit/src

# the model written by til_train (the challenge runs without network: everything it needs is in the image)
COPY model.pth /opt/til_kit/model.pth

RUN groupadd -r user && useradd -m -r -g user user && mkdir -p /output && chown user /output
USER user
WORKDIR /home/user

ENTRYPOINT ["til_infer", "/input", "/opt/til_kit/model.pth", "--out", "/output", "--tiger", "--precision", "bf16"]

# compute the challenge grants (as in the public algorithm example)
LABEL processor.cpus="1"
LABEL processor.memory="15G"
LABEL processor.gpu_count="1"
LABEL processor.gpu.memory="11G"
