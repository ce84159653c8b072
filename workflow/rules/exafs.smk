# Rules of the exafs arm (being written).
