"""The paper's method: SPF (``spf``: IR2 fuses SAM's masks with IR1's output), SPD (``spd``: IR1 distils IR2's
features), SGR (``sgr``: the relation between them kept inside each semantic region), the features they compare
(``analyzer``) and what each scheme minimises (``objectives``)."""
