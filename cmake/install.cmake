# Installation and the Debian package (README, "Install").
#
#   cmake --install build --prefix P     P/bin/gradsweep, P/share/gradsweep/{scripts,sweeps},
#                                        P/share/doc/gradsweep/{README.md,docs/}
#   cd build && cpack -G DEB             gradsweep_<version>_<arch>.deb (prefix /usr)
#
# The installed binary finds its files relative to itself (/proc/self/exe, then
# GS_DATA_DIR_FROM_BINDIR: bin/../share/gradsweep), so a prefix can be moved or
# copied and works without the source and build trees; the binary where the
# build put it (GS_BUILD_BINARY_DIR) falls back to the source tree
# (src/output/plot_launcher.cpp, find_data_file).
include(GNUInstallDirs)

set(GS_INSTALL_DATADIR ${CMAKE_INSTALL_DATADIR}/gradsweep)
foreach(d BINDIR DATADIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${d}}")
    message(FATAL_ERROR "gradsweep: CMAKE_INSTALL_${d} must be relative to the prefix (the installed binary finds its files relative to itself)")
  endif()
endforeach()
file(RELATIVE_PATH GS_DATA_DIR_FROM_BINDIR /p/${CMAKE_INSTALL_BINDIR} /p/${GS_INSTALL_DATADIR})
target_compile_definitions(gradsweep_core PRIVATE GS_DATA_DIR_FROM_BINDIR="${GS_DATA_DIR_FROM_BINDIR}"
                                                  GS_BUILD_BINARY_DIR="$<TARGET_FILE_DIR:gradsweep>")

install(TARGETS gradsweep RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(PROGRAMS scripts/plot.py scripts/plot_studies.py DESTINATION ${GS_INSTALL_DATADIR}/scripts)
install(PROGRAMS scripts/slurm/submit.sh scripts/slurm/shard_task.sh scripts/slurm/merge_task.sh
        DESTINATION ${GS_INSTALL_DATADIR}/scripts/slurm)
install(DIRECTORY sweeps/ DESTINATION ${GS_INSTALL_DATADIR}/sweeps)
# README's links (docs/..., docs/plots/...) stay valid beside it.
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)

if(GRADSWEEP_NATIVE AND GS_HAS_MARCH_NATIVE)
  message(STATUS "gradsweep: GRADSWEEP_NATIVE=ON: an installed binary or package runs only on CPUs like this one "
                 "(-march=native); configure with -DGRADSWEEP_NATIVE=OFF to package for other machines")
endif()

# cpack -G DEB. Depends: what the binary links (libc6, libstdc++6, libgcc-s1),
# computed by dpkg-shlibdeps. The CUDA runtime is linked statically
# (CUDA::cudart_static), so a CUDA build needs no CUDA package: only the NVIDIA
# driver (libcuda.so.1) on machines with a GPU, loaded at run time when present.
# The plotting script's Python packages are recommends: runs work without them.
set(CPACK_PACKAGE_NAME gradsweep)
set(CPACK_PACKAGE_VENDOR "gradsweep")
set(CPACK_PACKAGE_CONTACT "gradsweep maintainers <gradsweep@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "batch sweeps of gradient statistics over randomly seeded deep networks")
set(CPACK_PACKAGE_DESCRIPTION
    "gradsweep runs thousands to millions of randomly seeded fully connected networks from a JSON
sweep spec (CPU backend; CUDA backend when built with it) and writes per-layer gradient
statistics as JSON and CSV. Plots need python3 with numpy and matplotlib; scale-out
scripts for Slurm are in /usr/share/gradsweep/scripts/slurm.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3, python3-numpy, python3-matplotlib")
include(CPack)
