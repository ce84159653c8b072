# Rules of the md arm (being written).
