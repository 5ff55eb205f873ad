"""What every stage entry point shares: its command line and params (:mod:`.args`), how it runs the tasks of
``tasks`` (:mod:`.tasks`) and where their files live (:mod:`.paths`). One folder, so each stage's dvc.yaml entry
names it once."""
