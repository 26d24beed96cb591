python -m perceiver.scripts.audio.preproc giantmidi \
  --max_seq_len=6144
