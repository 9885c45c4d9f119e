"""Analysis of what the store holds: the four-point S_B(q) with its Ornstein–Zernike fit, and the report
(the paper's figures with the numbers behind them).

    fourpoint    S_B(q) and the OZ fit; numpy and scipy only (``tbotan.learn.evaluate`` uses it)
    embedding    health of the global embedding u: units alive, spread across temperatures; numpy only
    ceiling      what the data allow: split-half reliability of the stored target, a descriptor ridge regression;
                 numpy and scipy only (SciPy's k-d tree, not vesin, which imports torch)
    results      reads a store's spec, predictions and training histories (through ``tbotan.data.runs``)
    numbers      the numbers behind each figure and the headline table
    figures      draws each figure from its numbers (matplotlib)
    page         the report's index.html
    report       ``write_report``: reads, computes, draws, writes provenance, swaps the folder in

May import: numpy, scipy, zarr, matplotlib, ``tbotan.data`` (spec, store, runs), ``tbotan.core``,
``tbotan.errors``. Imports no ``tbotan.learn`` module and no torch, so ``tbotan report`` starts without them
(tests/test_layers.py checks both).
"""
