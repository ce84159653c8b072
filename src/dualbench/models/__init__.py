"""Models: CHGNet, SevenNet, matgl's M3GNet and TensorNet, and any ASE calculator,
vanilla or fine-tuned.

- :mod:`dualbench.models.spec`: what a model is (``ModelSpec``, its checkpoint read and
  hashed once, its fingerprint) and writing its ``model.json``;
- :mod:`dualbench.models.resolve`: a MODEL argument or ``model.json`` as a spec, and
  ``load_model`` / ``make_calculator`` of a spec;
- :mod:`dualbench.models.backend`: the ``Backend`` interface and the registry of kinds
  (``BACKENDS``, ``get_backend``, ``register_backend``, ``conda_env``);
- one module per kind: :mod:`~dualbench.models.chgnet` (trainer in
  :mod:`~dualbench.models.chgnet_train`), :mod:`~dualbench.models.sevennet` (trainer in
  :mod:`~dualbench.models.sevennet_train`), :mod:`~dualbench.models.matgl_kind` (trainer
  in :mod:`~dualbench.models.matgl_train`), :mod:`~dualbench.models.ase_kind`;
- :mod:`dualbench.models.checkpoints`: reading checkpoints without running code;
- :mod:`dualbench.models.device`: torch device and threads.
"""
