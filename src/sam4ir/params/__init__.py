"""``params.yaml`` as one typed object: its schema (:mod:`.schema`, which the library's components take their
sections from) and the reader the stages call once (:mod:`.config`). One folder, so every stage's dvc.yaml entry names
it once. Importing the schema does not import the reader."""
