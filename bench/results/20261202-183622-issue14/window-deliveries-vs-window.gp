set terminal svg size 720,420 dynamic font "sans,11"
set output "window-deliveries-vs-window.svg"
set title "window: deliveries/s against the window K (median of the rounds)"
set xlabel "K (messages in flight per sender)"
set ylabel "deliveries/s"
set grid
set key top left
set logscale y
plot "window-deliveries-vs-window-before.dat" using 1:2 with linespoints title "before", \
     "window-deliveries-vs-window-palaver.dat" using 1:2 with linespoints title "palaver", \
     "window-deliveries-vs-window-uws.dat" using 1:2 with linespoints title "uws", \
     "window-deliveries-vs-window-reference.dat" using 1:2 with linespoints title "reference"
