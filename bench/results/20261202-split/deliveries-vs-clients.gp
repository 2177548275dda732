set terminal svg size 720,420 dynamic font "sans,11"
set output "deliveries-vs-clients.svg"
set title "Fanout: deliveries/s against clients (1 sender, full speed)"
set xlabel "clients"
set ylabel "deliveries/s"
set grid
set key top left
plot "deliveries-vs-clients-before.dat" using 1:2 with linespoints title "before", \
     "deliveries-vs-clients-palaver.dat" using 1:2 with linespoints title "palaver", \
     "deliveries-vs-clients-reference.dat" using 1:2 with linespoints title "reference"
