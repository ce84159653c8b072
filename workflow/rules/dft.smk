# Rules of the dft arm (being written).
