python -m perceiver.scripts.audio.preproc maestro-v3 \
  --max_seq_len=2048
