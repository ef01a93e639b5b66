#!/bin/sh
# Build topol.tpr, the input of the GROMACS example: a 2 x 2 x 2 nm box of SPC water (663 atoms),
# made offline from files the Debian "gromacs" package ships (spc216.gro, oplsaa.ff). Needs only
# `gmx` (apt-get install gromacs); no network.
#
#   ./prepare.sh [DIR]       write the inputs into DIR (default: the current directory)
#   NSTEPS=N ./prepare.sh    run length; the default 60000 steps (120 ps) takes about 25 s with
#                            `mdrun -nt 2` on a 2-core machine (about 2,300 steps/s)
#
# The step count lives in the .tpr on purpose: `mdrun -nsteps` given on the command line is not
# re-read the same way on a restart, so the run length must come from the input file.
set -eu

out=${1:-.}
nsteps=${NSTEPS:-60000}
mkdir -p "$out"
cd "$out"

# Never leave "#file.1#" backups behind (gmx renames existing outputs by default).
export GMX_MAXBACKUP=-1

# Topology: the OPLS-AA force field and its SPC water model, both bundled with GROMACS.
# gmx solvate appends the "SOL 221" line to [ molecules ].
cat > topol.top <<'EOF'
#include "oplsaa.ff/forcefield.itp"
#include "oplsaa.ff/spc.itp"

[ system ]
SPC water box, 2 nm

[ molecules ]
EOF

# Fill a 2 nm cube with water copied from the bundled 216-molecule equilibrated box.
gmx -quiet solvate -cs spc216.gro -box 2 2 2 -o conf.gro -p topol.top

# Run parameters. Fixed seeds so that every prepare.sh builds the same simulation (`gmx dump`
# shows identical contents; a few bytes of the .tpr still differ from build to build).
# Output every 1000 steps (.trr, .log), 500 steps (.xtc) and 100 steps (.edr).
cat > md.mdp <<EOF
integrator          = md
dt                  = 0.002
nsteps              = $nsteps
nstxout             = 1000
nstvout             = 1000
nstfout             = 0
nstlog              = 1000
nstenergy           = 100
nstxout-compressed  = 500
cutoff-scheme       = Verlet
nstlist             = 10
rlist               = 0.9
coulombtype         = PME
rcoulomb            = 0.9
rvdw                = 0.9
tcoupl              = V-rescale
tc-grps             = System
tau_t               = 0.1
ref_t               = 300
pcoupl              = no
gen_vel             = yes
gen_temp            = 300
gen_seed            = 1234
ld_seed             = 5678
constraints         = h-bonds
EOF

gmx -quiet grompp -f md.mdp -c conf.gro -p topol.top -o topol.tpr
rm -f mdout.mdp
echo "prepare.sh: wrote $(pwd)/topol.tpr ($nsteps steps)"
