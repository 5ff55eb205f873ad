"""Training IR networks: the loop every method shares (:mod:`.fit`), its reconstruction losses (:mod:`.losses`) and
its held-out monitor (:mod:`.validation`). One folder, so a training stage's dvc.yaml entry names it once."""
