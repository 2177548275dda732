set terminal svg size 720,420 dynamic font "sans,11"
set output "dialects-deliveries-vs-window.svg"
set title "dialects: deliveries/s against the window K (median of the rounds)"
set xlabel "K (messages in flight per sender)"
set ylabel "deliveries/s"
set grid
set key top left
set logscale y
plot "dialects-deliveries-vs-window-palaver.dat" using 1:2 with linespoints title "palaver"
