set terminal svg size 720,420 dynamic font "sans,11"
set output "rss-vs-connections.svg"
set title "Server RSS against open connections (idle)"
set xlabel "connections"
set ylabel "RSS (MB)"
set grid
set key top left
plot "rss-vs-connections-before.dat" using 1:2 with linespoints title "before", \
     "rss-vs-connections-palaver.dat" using 1:2 with linespoints title "palaver", \
     "rss-vs-connections-uws.dat" using 1:2 with linespoints title "uws", \
     "rss-vs-connections-reference.dat" using 1:2 with linespoints title "reference"
