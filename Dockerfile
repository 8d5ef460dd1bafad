FROM python:3.11-slim
WORKDIR /app
# CPU-only torch first: the default index would pull a multi-GB CUDA build.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY assistant ./assistant
COPY ingest ./ingest
COPY eval ./eval
COPY cli ./cli
COPY prompts ./prompts
COPY docs ./docs
RUN pip install --no-cache-dir .
ENV HF_HUB_OFFLINE=1
EXPOSE 8000
CMD ["answerdesk", "serve", "--host", "0.0.0.0", "--port", "8000"]
